/**
 * What this client knows about the call, kept in step with the server's messages: the visible
 * participants, their publications, which of them we are subscribed to, the user's per-participant
 * "hide video" choices, network quality, and the subscriber `mid` → publication map.
 *
 * It also decides which subscriptions should exist ({@link CallState.subscriptionDiff}): every
 * publication of the others, except the video of participants whose video the user hid. The session
 * sends `subscribe`/`unsubscribe` for the difference. Pure: no DOM, no socket, no timers.
 */
import type {
  JoinedMessage,
  ParticipantInfo,
  PublicationInfo,
  QualityEntry,
  ServerMessage,
} from "./protocol";

/** A remote participant's tile, as the UI shows it. */
export interface TileInfo {
  participant: string;
  name: string;
  role: string;
  /** False when the user hid this participant's video. */
  videoVisible: boolean;
  /** The publication shown as this participant's video, if any. */
  videoPublication: string | null;
  /** Audio publications of this participant. */
  audioPublications: string[];
}

export interface SubscriptionDiff {
  subscribe: string[];
  unsubscribe: string[];
}

export class CallState {
  callId: string | null = null;
  self: ParticipantInfo | null = null;
  /** Other visible participants, in the order they became known. */
  readonly participants = new Map<string, ParticipantInfo>();
  /** Publications of the others. */
  readonly publications = new Map<string, PublicationInfo>();
  /** This participant's own live publications. */
  readonly own = new Map<string, PublicationInfo>();
  /** Publications the server is (as far as we know) forwarding to us. */
  readonly subscribed = new Set<string>();
  /** Participants whose video the user chose to hide; survives reconnects. */
  readonly hiddenVideo = new Set<string>();
  readonly quality = new Map<string, QualityEntry>();
  /** Subscriber transport `mid` → publication id, from the server's offers. */
  readonly mids = new Map<string, string>();

  /**
   * Takes in a `joined` reply. When it says the session was resumed, subscriptions, own
   * publications and the `mid` map carry on; otherwise they start empty (fresh transports).
   */
  applyJoined(m: JoinedMessage): { resumed: boolean } {
    const resumed = m.resumed === true;
    this.callId = m.call.id;
    this.self = m.participant;
    this.participants.clear();
    for (const p of m.participants) {
      if (p.id !== m.participant.id) this.participants.set(p.id, p);
    }
    this.publications.clear();
    for (const pub of m.publications) {
      if (pub.participant !== m.participant.id) this.publications.set(pub.id, pub);
    }
    this.own.clear();
    this.subscribed.clear();
    if (resumed) {
      for (const pub of m.own_publications ?? []) this.own.set(pub.id, pub);
      for (const id of m.subscriptions ?? []) {
        if (this.publications.has(id)) this.subscribed.add(id);
      }
    } else {
      this.mids.clear();
    }
    for (const id of [...this.quality.keys()]) {
      if (id !== m.participant.id && !this.participants.has(id)) this.quality.delete(id);
    }
    return { resumed };
  }

  /** Applies a server push message. Returns true when something visible may have changed. */
  apply(m: ServerMessage): boolean {
    switch (m.type) {
      case "participant_joined":
        if (this.self !== null && m.participant.id === this.self.id) return false;
        this.participants.set(m.participant.id, m.participant);
        return true;
      case "participant_left": {
        const known = this.participants.delete(m.participant);
        for (const [id, pub] of this.publications) {
          if (pub.participant === m.participant) this.removePublication(id);
        }
        this.quality.delete(m.participant);
        return known;
      }
      case "publication_added":
        if (this.self !== null && m.publication.participant === this.self.id) return false;
        this.publications.set(m.publication.id, m.publication);
        return true;
      case "publication_removed":
        return this.removePublication(m.publication);
      case "offer":
        for (const t of m.tracks) this.mids.set(t.mid, t.publication);
        return false;
      case "quality":
        for (const e of m.participants) this.quality.set(e.participant, e);
        return true;
      default:
        return false;
    }
  }

  private removePublication(id: string): boolean {
    const known = this.publications.delete(id);
    this.subscribed.delete(id);
    this.own.delete(id);
    return known;
  }

  /** Records one of our own publications (reply to `publish`). */
  addOwn(pub: PublicationInfo): void {
    this.own.set(pub.id, pub);
  }

  /** Forgets who else is in the call (the view is stale once the connection is given up). */
  clearRemote(): void {
    this.participants.clear();
    this.publications.clear();
    this.quality.clear();
    this.resetTransports();
  }

  /** Forgets transport-bound state before building new peer connections. */
  resetTransports(): void {
    this.own.clear();
    this.subscribed.clear();
    this.mids.clear();
  }

  /** The publications we should be receiving now. */
  wantedSubscriptions(): Set<string> {
    const wanted = new Set<string>();
    for (const pub of this.publications.values()) {
      if (!this.participants.has(pub.participant)) continue;
      if (pub.kind === "video" && this.hiddenVideo.has(pub.participant)) continue;
      wanted.add(pub.id);
    }
    return wanted;
  }

  /** What to `subscribe` and `unsubscribe` to reach {@link wantedSubscriptions}. */
  subscriptionDiff(): SubscriptionDiff {
    const wanted = this.wantedSubscriptions();
    return {
      subscribe: [...wanted].filter((id) => !this.subscribed.has(id)).sort(comparePublicationIds),
      unsubscribe: [...this.subscribed]
        .filter((id) => !wanted.has(id) && this.publications.has(id))
        .sort(comparePublicationIds),
    };
  }

  markSubscribed(ids: readonly string[]): void {
    for (const id of ids) if (this.publications.has(id)) this.subscribed.add(id);
  }

  markUnsubscribed(ids: readonly string[]): void {
    for (const id of ids) this.subscribed.delete(id);
  }

  setVideoHidden(participant: string, hidden: boolean): void {
    if (hidden) this.hiddenVideo.add(participant);
    else this.hiddenVideo.delete(participant);
  }

  /** The publication and participant carried by a subscriber `mid`, if known. */
  publicationForMid(mid: string | null): PublicationInfo | undefined {
    if (mid === null) return undefined;
    const id = this.mids.get(mid);
    return id === undefined ? undefined : this.publications.get(id);
  }

  /** One tile per visible remote participant, in join order. */
  tiles(): TileInfo[] {
    return [...this.participants.values()].map((p) => {
      const pubs = [...this.publications.values()]
        .filter((pub) => pub.participant === p.id)
        .sort((a, b) => comparePublicationIds(a.id, b.id));
      const videos = pubs.filter((pub) => pub.kind === "video");
      const video = videos.find((pub) => pub.source === "camera") ?? videos[0];
      return {
        participant: p.id,
        name: p.name,
        role: p.role,
        videoVisible: !this.hiddenVideo.has(p.id),
        videoPublication: video?.id ?? null,
        audioPublications: pubs.filter((pub) => pub.kind === "audio").map((pub) => pub.id),
      };
    });
  }
}

/** Orders `PB_2` before `PB_10`; other ids fall back to string order. */
export function comparePublicationIds(a: string, b: string): number {
  const na = /^PB_(\d+)$/.exec(a);
  const nb = /^PB_(\d+)$/.exec(b);
  if (na !== null && nb !== null) return Number(na[1]) - Number(nb[1]);
  return a < b ? -1 : a > b ? 1 : 0;
}
