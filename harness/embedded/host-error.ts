// The embedded host cannot be used as asked, for a reason the user can act on
// (another `xtv host up` is starting one in the same state directory, it was
// booted without the XenAPI test double, the double did not build or does not
// answer). The CLI shows the message and exits 2 (harness/cli/errors.ts).
export class EmbeddedHostError extends Error {
  override name = 'EmbeddedHostError';
}
