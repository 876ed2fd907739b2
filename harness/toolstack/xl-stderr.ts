// How an xl failure is shown in one line. Its own module, without imports,
// so that the XenAPI test double (xapi-endpoint/, bundled for dom0) shows its
// xl errors the same way as the harness's xl driver.

/**
 * The lines of xl's stderr an error message shows: the last three, and
 * before them the first libxl error when it is not among them (a failed
 * create ends with the errors of its clean-up, which hide the cause).
 */
export function stderrSummary(stderr: string): string {
  const lines = stderr.split('\n');
  const last = lines.slice(-3);
  const first = lines.find((l) => /error/i.test(l));
  return (first !== undefined && !last.includes(first) ? [first, '...', ...last] : last).join(' | ');
}
