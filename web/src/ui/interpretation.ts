/**
 * The interpretation strip above the tiles (simultaneous calls):
 * - for listeners, the language picker (`#language-select`: "Original (floor)" and the call's
 *   languages, sends `set_language`) and what they hear now (`#listening-state`);
 * - for interpreters (a booth in their `routing` summary), the booth console: the LIVE indicator
 *   (`#live-indicator[data-live]`), the output channel (`#output-channel`), the direction switch
 *   (`#switch-direction`, or the "D" key), the relay input (`#input-select`), go on / off air
 *   (`#go-on-air`, `#go-off-air`), handover (`#handover-request`, `#handover-withdraw`, and for an
 *   incoming request `#handover-banner` with `#handover-accept` / `#handover-decline`).
 * Views come from `interpretation.ts`; every action is a request whose effect arrives as the next
 * `routing` message, which re-renders this strip.
 */
import {
  type ConsoleView,
  consoleView,
  isDirectionShortcut,
  languageLabel,
  languageName,
  languageOptions,
  listeningView,
  type LanguageOption,
} from "../interpretation";
import { type ClientMessage, FLOOR, type ParticipantInfo, type RoutingMessage } from "../protocol";
import { byId, h, setData, setText } from "./dom";

export type SendInterpretation = (message: ClientMessage) => Promise<boolean>;

/** Options of a select, rebuilt only when they change (keeps the open list stable). */
function syncOptions(select: HTMLSelectElement, options: LanguageOption[], value: string): void {
  const current = [...select.options].map((o) => `${o.value}\u0000${o.text}`).join("\u0001");
  const wanted = options.map((o) => `${o.value}\u0000${o.label}`).join("\u0001");
  if (current !== wanted) select.replaceChildren(...options.map((o) => h("option", { value: o.value }, o.label)));
  if (select.value !== value) select.value = value;
}

export class InterpretationPanel {
  private readonly root = byId("interpretation");
  private readonly listenerPanel = byId("listener-panel");
  private readonly languageSelect = byId<HTMLSelectElement>("language-select");
  private readonly listeningState = byId("listening-state");
  private readonly boothConsole = byId("booth-console");
  private readonly liveIndicator = byId("live-indicator");
  private readonly liveText = byId("live-text");
  private readonly outputChannel = byId("output-channel");
  private readonly switchButton = byId<HTMLButtonElement>("switch-direction");
  private readonly switchLabel = byId("switch-label");
  private readonly inputSelect = byId<HTMLSelectElement>("input-select");
  private readonly goOnAir = byId<HTMLButtonElement>("go-on-air");
  private readonly goOffAir = byId<HTMLButtonElement>("go-off-air");
  private readonly handoverRequest = byId<HTMLButtonElement>("handover-request");
  private readonly handoverWithdraw = byId<HTMLButtonElement>("handover-withdraw");
  private readonly handoverBanner = byId("handover-banner");
  private readonly handoverText = byId("handover-text");
  private readonly handoverAccept = byId<HTMLButtonElement>("handover-accept");
  private readonly handoverDecline = byId<HTMLButtonElement>("handover-decline");
  private readonly boothNote = byId("booth-note");

  private view: ConsoleView | null = null;
  /** Requests in flight; the controls wait for their answer. */
  private busy = 0;
  /** A choice sent and not yet confirmed by a `routing` message: the select keeps showing it. */
  private wantedLanguage: string | null = null;
  private wantedInput: string | null = null;
  private lastArgs: [RoutingMessage | null, ParticipantInfo | null, ParticipantInfo[], string[]] = [null, null, [], []];

  constructor(private readonly send: SendInterpretation) {
    this.languageSelect.addEventListener("change", () => {
      const value = this.languageSelect.value;
      this.wantedLanguage = value;
      void this.run({ type: "set_language", language: value === "" ? null : value }, () => {
        if (this.wantedLanguage === value) this.wantedLanguage = null;
      });
    });
    this.switchButton.addEventListener("click", () => this.switchDirection());
    this.inputSelect.addEventListener("change", () => {
      const value = this.inputSelect.value;
      this.wantedInput = value;
      void this.run({ type: "set_input", input: value }, () => {
        if (this.wantedInput === value) this.wantedInput = null;
      });
    });
    this.goOnAir.addEventListener("click", () => {
      if (this.view !== null) void this.run({ type: "go_on_air", output: this.view.output });
    });
    this.goOffAir.addEventListener("click", () => void this.run({ type: "go_off_air" }));
    this.handoverRequest.addEventListener("click", () => {
      const to = this.view?.handoverPartner?.id;
      if (to !== undefined) void this.run({ type: "request_handover", to });
    });
    this.handoverWithdraw.addEventListener("click", () => {
      const to = this.view?.outgoing[0]?.to;
      if (to !== undefined) void this.run({ type: "withdraw_handover", to });
    });
    this.handoverAccept.addEventListener("click", () => {
      const from = this.view?.incoming[0]?.from;
      if (from !== undefined) void this.run({ type: "accept_handover", from });
    });
    this.handoverDecline.addEventListener("click", () => {
      const from = this.view?.incoming[0]?.from;
      if (from !== undefined) void this.run({ type: "decline_handover", from });
    });
    document.addEventListener("keydown", (e) => {
      if (this.view === null || this.boothConsole.hidden) return;
      const target = e.target instanceof HTMLElement ? e.target : null;
      const editing =
        target !== null &&
        (target.isContentEditable || target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement);
      if (!isDirectionShortcut({ key: e.key, ctrlKey: e.ctrlKey, metaKey: e.metaKey, altKey: e.altKey, repeat: e.repeat, editing })) return;
      e.preventDefault();
      this.switchDirection();
    });
  }

  private switchDirection(): void {
    if (this.view === null || this.busy > 0) return;
    void this.run({ type: "switch_direction", output: this.view.switchTo });
  }

  /**
   * Sends a request; the controls are disabled until its answer. `refused` runs before the
   * controls are drawn again when the server (or the connection) refused it.
   */
  private async run(message: ClientMessage, refused?: () => void): Promise<void> {
    this.busy++;
    this.renderAgain();
    let ok = false;
    try {
      ok = await this.send(message);
    } finally {
      this.busy--;
      if (!ok) refused?.();
      // An accepted request's routing follows and re-renders as well.
      this.renderAgain();
    }
  }

  private renderAgain(): void {
    this.render(...this.lastArgs);
  }

  /** Shows the strip for this routing; `others` are the other visible participants. */
  render(routing: RoutingMessage | null, self: ParticipantInfo | null, others: ParticipantInfo[], languages: string[]): void {
    this.lastArgs = [routing, self, others, languages];
    const listening = listeningView(routing);
    const booth = consoleView(routing, self?.id ?? null, others, languages);
    this.view = booth;
    const isOperator = self?.role === "operator";
    this.root.hidden = isOperator || (booth === null && !listening.active);
    setData(this.root, "mode", routing?.mode ?? "unknown");

    this.listenerPanel.hidden = booth !== null || !listening.active;
    if (this.wantedLanguage === listening.value) this.wantedLanguage = null;
    if (!this.listenerPanel.hidden) {
      syncOptions(
        this.languageSelect,
        languageOptions(languages, routing?.summary.listening ?? null),
        this.wantedLanguage ?? listening.value,
      );
      this.languageSelect.disabled = this.busy > 0;
      setText(this.listeningState, listening.text);
      setData(this.listeningState, "channel", listening.channel);
      setData(this.listeningState, "listening", listening.value);
      setData(this.listeningState, "floorGain", String(listening.floorGain));
    }

    this.boothConsole.hidden = booth === null;
    if (booth !== null) this.renderConsole(booth);
  }

  private renderConsole(v: ConsoleView): void {
    const busy = this.busy > 0;
    setData(this.liveIndicator, "live", String(v.live));
    setData(this.liveIndicator, "status", v.status);
    setText(this.liveText, v.liveText);
    this.liveIndicator.title = v.live
      ? `Listeners of ${languageName(v.output)} hear you now`
      : v.status === "waiting"
        ? "On air, but nobody hears you yet"
        : "Nobody hears you";

    setText(this.outputChannel, languageLabel(v.output));
    setData(this.outputChannel, "output", v.output);
    setText(this.switchLabel, `Switch to ${languageName(v.switchTo)}`);
    setData(this.switchButton, "to", v.switchTo);
    this.switchButton.disabled = busy;

    if (this.wantedInput === v.input) this.wantedInput = null;
    syncOptions(
      this.inputSelect,
      v.inputOptions.map((c) => ({ value: c, label: c === FLOOR ? "Floor (original)" : `${languageLabel(c)} relay` })),
      this.wantedInput !== null && v.inputOptions.includes(this.wantedInput) ? this.wantedInput : v.input,
    );
    this.inputSelect.disabled = busy;

    this.goOnAir.hidden = v.onAir;
    this.goOnAir.disabled = busy;
    setText(this.goOnAir, `Go on air into ${languageName(v.output)}`);
    this.goOffAir.hidden = !v.onAir;
    this.goOffAir.disabled = busy;

    this.handoverRequest.hidden = !v.canRequestHandover;
    this.handoverRequest.disabled = busy;
    setText(this.handoverRequest, v.handoverLabel);
    const out = v.outgoing[0];
    this.handoverWithdraw.hidden = out === undefined;
    this.handoverWithdraw.disabled = busy;
    if (out !== undefined) setText(this.handoverWithdraw, `Withdraw request to ${out.name}`);

    const incoming = v.incoming[0];
    this.handoverBanner.hidden = incoming === undefined;
    if (incoming !== undefined) {
      setText(this.handoverText, incoming.text);
      setData(this.handoverBanner, "from", incoming.from);
    }
    this.handoverAccept.disabled = busy;
    this.handoverDecline.disabled = busy;

    const notes = [v.note];
    if (out !== undefined) notes.unshift(`Waiting for ${out.name} to answer your handover request…`);
    setText(this.boothNote, notes.filter((n) => n !== "").join(" "));
  }
}
