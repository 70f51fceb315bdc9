/**
 * Turns getUserMedia failures into a small set of problems and plain-language messages, so the
 * pre-join page can say what went wrong and offer audio-only or listen-only instead. Pure.
 */

export type DeviceKind = "camera" | "microphone";
export type DeviceProblem = "denied" | "not_found" | "busy" | "insecure" | "other";

/** Classifies an exception from `getUserMedia` (a DOMException by name, or anything else). */
export function classifyMediaError(error: unknown): DeviceProblem {
  const name =
    typeof error === "object" && error !== null && "name" in error && typeof error.name === "string"
      ? error.name
      : "";
  switch (name) {
    case "NotAllowedError":
    case "PermissionDeniedError":
    case "SecurityError":
      return "denied";
    case "NotFoundError":
    case "DevicesNotFoundError":
    case "OverconstrainedError":
      return "not_found";
    case "NotReadableError":
    case "TrackStartError":
    case "AbortError":
      return "busy";
    case "InsecureContextError":
      return "insecure";
    default:
      return "other";
  }
}

/** One sentence for the user about one device. */
export function describeProblem(kind: DeviceKind, problem: DeviceProblem): string {
  const device = kind === "camera" ? "camera" : "microphone";
  switch (problem) {
    case "denied":
      return `Access to the ${device} was blocked. Allow it in the browser's site settings, then press “Check again”.`;
    case "not_found":
      return `No ${device} was found. Connect one, then press “Check again”.`;
    case "busy":
      return `The ${device} is in use by another program or could not start. Close the other program, then press “Check again”.`;
    case "insecure":
      return `This page is not on a secure (https) connection, so the browser does not offer the ${device}.`;
    case "other":
      return `The ${device} could not be started.`;
  }
}

/** How a participant can join given what works. */
export type JoinMode = "full" | "audio-only" | "listen-only";

/** The best mode the working devices allow. */
export function bestMode(haveAudio: boolean, haveVideo: boolean): JoinMode {
  if (haveAudio && haveVideo) return "full";
  if (haveAudio) return "audio-only";
  return "listen-only";
}
