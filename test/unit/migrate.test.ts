// Migration as a request (#17): the host's capability read from xl info, the
// runner skipping what a host cannot migrate, and a migrated guest held to its
// continuity, on the FAKE toolstack (testing/fake-driver.ts).
import test from 'tape';
import { migrationFact } from '../../harness/toolstack/live-migration.ts';
import { modelFor } from '../../harness/matrix/models.ts';
import { hostSkipReason, runMatrix } from '../../harness/matrix/runner.ts';
import { findCase, type Case } from '../../harness/matrix/scenarios.ts';
import { FAKE_TIMING, FakeToolstackDriver, type FakeOptions } from '../../testing/fake-driver.ts';
import type { DomainType, ToolstackKind } from '../../harness/toolstack/driver.ts';

function cases(...names: string[]): Case[] {
  return names.map((n) => {
    const c = findCase(n);
    if (!c) throw new Error(`no case ${n}`);
    return c;
  });
}

async function run(kind: ToolstackKind, domainType: DomainType, cs: Case[], fake: Partial<FakeOptions> = {}) {
  const driver = new FakeToolstackDriver({ kind, ...fake });
  const image = { kernelPath: '/k', initrdPath: '/i', kernelArgs: '', domainType, memoryMiB: 32 };
  const summary = await runMatrix({ driver, model: modelFor(kind), cases: cs, image, parallel: 4, timing: FAKE_TIMING });
  await driver.close();
  return { driver, summary };
}

test('migrationFact: PV live migration needs shadow paging in virt_caps', (t) => {
  t.deepEqual(migrationFact('pv hvm hap shadow gnttab-v1').cannotMigrate, undefined, 'shadow: every type migrates');
  const noShadow = migrationFact('pv hvm hap gnttab-v1 gnttab-v2');
  t.deepEqual(Object.keys(noShadow.cannotMigrate ?? {}), ['pv'], 'no shadow: PV cannot, PVH can');
  t.match(noShadow.cannotMigrate?.pv ?? '', /shadow paging.*virt_caps: pv hvm hap gnttab-v1 gnttab-v2/, 'the reason names what xl info said');
  t.equal(migrationFact('hvm hap').cannotMigrate, undefined, 'no PV at all: nothing to refuse');
  t.equal(migrationFact(undefined).cannotMigrate, undefined, 'xl info unreadable: assumed possible');
  t.match(migrationFact(undefined).note, /assumed/);
  t.end();
});

test('hostSkipReason: only migrations the toolstack starts, of a domain type the host cannot migrate', (t) => {
  const facts = { version: 'x', dom0: null, consoleLogDir: null, notes: [], cannotMigrate: { pv: 'no shadow' } };
  const s = (n: string) => findCase(n)!.scenario;
  const xl = modelFor('xl');
  t.equal(hostSkipReason(s('running.migrate.ack-ok.suspend'), xl, 'pv', facts), 'no shadow');
  t.equal(hostSkipReason(s('paused.migrate.ack-ok.ignore'), xl, 'pv', facts), 'no shadow', 'xl sends a paused domain live too');
  t.equal(hostSkipReason(s('paused.migrate.ack-ok.ignore'), modelFor('xapi'), 'pv', facts), null, 'XAPI refuses a paused VM before Xen: that case runs');
  t.equal(hostSkipReason(s('halted.migrate.ack-ok.ignore'), xl, 'pv', facts), null, "a halted VM's refusal is the toolstack's");
  t.equal(hostSkipReason(s('running.migrate.ack-ok.suspend'), xl, 'pvh', facts), null, 'PVH migrates');
  t.equal(hostSkipReason(s('running.suspend.ack-ok.suspend'), xl, 'pv', facts), null, 'other requests are not concerned');
  t.equal(hostSkipReason(s('running.migrate.ack-ok.suspend'), xl, 'pv', null), null, 'no facts: nothing skipped');
  t.end();
});

for (const kind of ['xl', 'xapi'] as const) {
  test(`${kind}: a migrated guest is the same guest, one resume later; a host that cannot migrate PV skips, with its reason`, async (t) => {
    const names = ['running.migrate.ack-ok.suspend', 'running.migrate.ack-none.ignore', 'halted.migrate.ack-ok.ignore'];
    const { summary, driver } = await run(kind, 'pvh', cases(...names));
    t.deepEqual(
      summary.cases.map((c) => `${c.name}: ${c.verdict}`),
      names.map((n) => `${n}: pass`),
    );
    const ok = summary.cases[0]!;
    t.equal(ok.observation?.domid, 'new', 'a new domain');
    t.ok(
      ok.evidence.steps.some((l) => /continuity: .*resumes 0 -> 1.*the same guest$/.test(l)),
      'continuity checked after the migration: resumes 0 -> 1',
    );
    t.deepEqual(driver.leftovers(), [], 'every VM removed');

    const pv = await run(kind, 'pv', cases(...names), { cannotMigrate: { pv: 'this host cannot live-migrate PV domains' } });
    t.deepEqual(
      pv.summary.cases.map((c) => `${c.name}: ${c.verdict}${c.skipReason ? ` (${c.skipReason})` : ''}`),
      [
        'running.migrate.ack-ok.suspend: skip (this host cannot live-migrate PV domains)',
        'running.migrate.ack-none.ignore: skip (this host cannot live-migrate PV domains)',
        'halted.migrate.ack-ok.ignore: pass',
      ],
      'PV migrations skipped with the host reason; a halted VM is still asked',
    );
  });

  test(`${kind}: a migration that boots the guest afresh fails on continuity`, async (t) => {
    const { summary } = await run(kind, 'pvh', cases('running.migrate.ack-ok.suspend'), { misbehave: 'boot-on-resume' });
    const c = summary.cases[0]!;
    t.equal(c.verdict, 'fail');
    t.match(c.invariantProblems.join('\n'), /continuity: boot id .* became .*: the guest booted again/, 'the evidence says the guest booted again');
  });
}
