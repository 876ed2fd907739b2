// Settings the e2e files and the shared host they run on (shared-host.ts)
// must agree on. No side effects: test files import it.

/** The endpoint's ack timeout for the e2e run: XAPI's 60 s would only make the no-ack case slower. */
export const E2E_XAPI_ACK_TIMEOUT_MS = 15_000;
export const E2E_XAPI_LIFECYCLE = { shutdownAckTimeoutMs: E2E_XAPI_ACK_TIMEOUT_MS };
/** Enough for every file's guests at once (32-40 MiB each) beside dom0. */
export const E2E_HOST_MEMORY_MIB = 2048;
/** vCPUs of the shared host (QEMU runs one thread per vCPU; dom0 gets them all). */
export const E2E_HOST_CPUS = Number(process.env.XTV_E2E_HOST_CPUS ?? 2);
