/**
 * Camera and microphone access: lists devices and opens tracks with the constraints the call
 * needs (1280x720 video so simulcast gets three layers; echo-cancelled audio). When a device fails,
 * the other is still tried on its own, and the failure is reported as a {@link DeviceProblem}.
 */
import { classifyMediaError, type DeviceProblem } from "./mediaerrors";

export interface DeviceLists {
  cameras: MediaDeviceInfo[];
  microphones: MediaDeviceInfo[];
}

export interface LocalTracks {
  audio: MediaStreamTrack | null;
  video: MediaStreamTrack | null;
  audioProblem: DeviceProblem | null;
  videoProblem: DeviceProblem | null;
}

export interface DeviceChoice {
  audioDeviceId?: string | undefined;
  videoDeviceId?: string | undefined;
  /** Skip the camera entirely (audio-only chosen by the user). */
  noVideo?: boolean;
}

export function mediaAvailable(): boolean {
  return typeof navigator !== "undefined" && navigator.mediaDevices?.getUserMedia !== undefined;
}

export async function listDevices(): Promise<DeviceLists> {
  if (!mediaAvailable()) return { cameras: [], microphones: [] };
  const all = await navigator.mediaDevices.enumerateDevices();
  return {
    cameras: all.filter((d) => d.kind === "videoinput" && d.deviceId !== ""),
    microphones: all.filter((d) => d.kind === "audioinput" && d.deviceId !== ""),
  };
}

export function audioConstraints(deviceId?: string): MediaTrackConstraints {
  return {
    deviceId: deviceId ? { exact: deviceId } : undefined,
    echoCancellation: true,
    noiseSuppression: true,
    autoGainControl: true,
  };
}

export function videoConstraints(deviceId?: string): MediaTrackConstraints {
  return {
    deviceId: deviceId ? { exact: deviceId } : undefined,
    width: { ideal: 1280 },
    height: { ideal: 720 },
    frameRate: { ideal: 30, max: 30 },
  };
}

async function open(constraints: MediaStreamConstraints): Promise<MediaStream> {
  return navigator.mediaDevices.getUserMedia(constraints);
}

/** Opens the microphone and (unless `noVideo`) the camera; never throws. */
export async function openLocalTracks(choice: DeviceChoice): Promise<LocalTracks> {
  const result: LocalTracks = { audio: null, video: null, audioProblem: null, videoProblem: null };
  if (!mediaAvailable()) {
    result.audioProblem = "insecure";
    result.videoProblem = choice.noVideo ? null : "insecure";
    return result;
  }
  const audio = audioConstraints(choice.audioDeviceId);
  const video = videoConstraints(choice.videoDeviceId);
  if (!choice.noVideo) {
    try {
      const stream = await open({ audio, video });
      result.audio = stream.getAudioTracks()[0] ?? null;
      result.video = stream.getVideoTracks()[0] ?? null;
      return result;
    } catch {
      // Find out which of the two failed.
    }
    try {
      result.video = (await open({ video })).getVideoTracks()[0] ?? null;
    } catch (e) {
      result.videoProblem = classifyMediaError(e);
    }
  }
  try {
    result.audio = (await open({ audio })).getAudioTracks()[0] ?? null;
  } catch (e) {
    result.audioProblem = classifyMediaError(e);
  }
  return result;
}

export function stopTracks(...tracks: (MediaStreamTrack | null)[]): void {
  for (const t of tracks) t?.stop();
}

export interface OneTrack {
  track: MediaStreamTrack | null;
  problem: DeviceProblem | null;
}

/** Opens one device of a kind (for the pickers); never throws. */
export async function openDevice(kind: "audio" | "video", deviceId?: string): Promise<OneTrack> {
  if (!mediaAvailable()) return { track: null, problem: "insecure" };
  try {
    const stream =
      kind === "audio"
        ? await open({ audio: audioConstraints(deviceId) })
        : await open({ video: videoConstraints(deviceId) });
    return { track: stream.getTracks()[0] ?? null, problem: null };
  } catch (e) {
    return { track: null, problem: classifyMediaError(e) };
  }
}
