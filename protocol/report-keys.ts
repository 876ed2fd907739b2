// The keys of the agent's report under data/xtv/ (REPORT_DIR): what the agent
// writes (guest/agent/report.ts) and what the harness reads
// (harness/matrix/guest-report.ts), in one list so that the two cannot
// drift apart. docs/guest-protocol.md says what each holds.

/** Every key the agent writes under data/xtv/, in the order it writes them. */
export const REPORT_KEYS = [
  'version',
  'protocols',
  'boot-id',
  'domid',
  'state',
  'resumes',
  'run-ms',
  'domids',
  'suspended-at',
  'resumed-at',
  'clock-skew-ms',
  'pending',
  'delayed',
  'features',
  'received',
  'rejected',
  'acked',
  'actions',
  'errors',
  'last-error',
  'event-seq',
  'event-node',
  'event-value',
  'event-id',
  'event-decision',
  'event-error',
  'event-command',
  'event-ack',
  'event-ack-value',
  'event-action',
  'event-note',
  'event-time',
  'event-read-ms',
  'event-acked-ms',
  'event-acted-ms',
] as const;
export type ReportKey = (typeof REPORT_KEYS)[number];

/** How many domids the report's `domids` keeps (the newest): a soak of thousands of restores fits one node. */
export const DOMIDS_KEPT = 64;
