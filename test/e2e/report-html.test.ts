// Renders the HTML report in headless Chromium (Debian's `chromium`,
// installed by scripts/deps.sh) and checks that the grid is really there in
// the DOM the browser built, that hostile case data stayed text, and that a
// screenshot can be taken (look at it: the test prints its path).
import test from 'tape';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { modelFor } from '../../harness/matrix/models.ts';
import { runMatrix } from '../../harness/matrix/runner.ts';
import { matrixCases } from '../../harness/matrix/scenarios.ts';
import { FAKE_TIMING, FakeToolstackDriver } from '../../testing/fake-driver.ts';
import { toHtml } from '../../harness/report/html.ts';

const CHROMIUM = process.env.XTV_CHROMIUM ?? '/usr/bin/chromium';
const HOSTILE = '</pre><script>document.title="pwned"</script><img id="pwned" src=x onerror="document.title=\'pwned\'">';

/** Runs chromium headless with a fresh profile; resolves with stdout, bounded. */
function chromium(args: string[], profile: string, timeoutMs = 90_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-dev-shm-usage',
        '--hide-scrollbars',
        `--user-data-dir=${profile}`,
        ...args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`chromium did not finish within ${timeoutMs} ms\n${stderr.slice(-2000)}`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('the HTML report renders in headless Chromium with its grid, and hostile data stays text', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.fail(`${CHROMIUM} not found: run 'bash scripts/deps.sh' as root (it installs Debian's chromium)`);
    t.end();
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'xtv-html-'));
  const keep = process.env.XTV_KEEP_SCREENSHOTS;
  try {
    // A real run of the full matrix on the fake toolstack, with one case made hostile and one failing.
    const driver = new FakeToolstackDriver({ kind: 'xl' });
    const summary = await runMatrix({
      driver,
      model: modelFor('xl'),
      cases: matrixCases('full'),
      image: { kernelPath: '/k', initrdPath: '/i', kernelArgs: '', domainType: 'pv', memoryMiB: 32 },
      parallel: 16,
      timing: FAKE_TIMING,
    });
    await driver.close();
    const victim = summary.cases.findIndex((c) => c.name === 'running.clean_shutdown.ack-ok.reboot');
    const v = summary.cases[victim]!;
    summary.cases[victim] = {
      ...v,
      verdict: 'fail',
      summary: `hostile ${HOSTILE}`,
      invariantProblems: [HOSTILE],
      evidence: { ...v.evidence, console: HOSTILE, toolstackLog: HOSTILE },
    };
    summary.counts.pass--;
    summary.counts.fail++;
    summary.verdict = 'fail';
    const file = join(dir, 'report.html');
    writeFileSync(file, toHtml(summary));
    const url = pathToFileURL(file).href;

    const dom = await chromium(['--dump-dom', url], join(dir, 'profile-dom'));
    t.equal(dom.code, 0, 'chromium --dump-dom exits 0');
    const html = dom.stdout;
    const grids = html.match(/<table class="grid"/g) ?? [];
    t.ok(grids.length >= 4, `${grids.length} grids in the rendered DOM`);
    const cells = html.match(/<td class="v-(pass|skip|unmodelled|error|fail)" data-case=/g) ?? [];
    const drawn = grids.length * 9 * 6;
    t.ok(
      cells.length <= drawn && cells.length >= summary.cases.filter((c) => c.verdict !== 'skip').length,
      `${cells.length} coloured cells in ${grids.length} grids`,
    );
    t.equal(
      html.match(/<td class="v-(pass|unmodelled|error|fail)" data-case=/g)?.length,
      summary.cases.filter((c) => c.verdict !== 'skip').length,
      'every case that ran has its cell',
    );
    t.match(
      html,
      /<td class="v-fail" data-case="running\.clean_shutdown\.ack-ok\.reboot" data-verdict="fail"><a href="#case-\d+"/,
      'the failing cell links to its evidence',
    );
    t.notOk(/<title>pwned<\/title>/.test(html), 'no injected script ran');
    t.notOk(/<img[^>]*pwned/.test(html), 'no injected element exists');
    t.ok(html.includes('&lt;script&gt;document.title'), 'the hostile text is shown as text');

    const shot = join(dir, 'grid.png');
    const s1 = await chromium([`--screenshot=${shot}`, '--window-size=1500,2200', url], join(dir, 'profile-shot'));
    t.equal(s1.code, 0, 'screenshot taken');
    t.ok(existsSync(shot) && statSync(shot).size > 20_000, `screenshot of the grid (${existsSync(shot) ? statSync(shot).size : 0} bytes)`);
    const shot2 = join(dir, 'evidence.png');
    const s2 = await chromium([`--screenshot=${shot2}`, '--window-size=1200,1600', `${url}#case-${victim}`], join(dir, 'profile-shot2'));
    t.equal(s2.code, 0, "screenshot of a cell's evidence (URL target) taken");
    t.ok(existsSync(shot2) && statSync(shot2).size > statSync(shot).size / 4, 'the evidence panel is drawn over the grid');
    if (keep) {
      mkdirSync(keep, { recursive: true });
      writeFileSync(join(keep, 'report.html'), readFileSync(file));
      writeFileSync(join(keep, 'grid.png'), readFileSync(shot));
      writeFileSync(join(keep, 'evidence.png'), readFileSync(shot2));
      t.comment(`screenshots kept in ${keep}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.end();
});
