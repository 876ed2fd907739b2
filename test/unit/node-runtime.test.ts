// dom0's Node from Debian's packages (#15 item 13): which nodejs is Debian's,
// and the dependency closure that goes into the archive, from apt-cache's
// output as apt prints it. Without apt: the closure is resolved against a
// table standing in for `apt-cache show`.
import test from 'tape';
import {
  DOM0_LIBRARIES,
  parseAptShow,
  parseDepends,
  parseNeeded,
  pickDebianNode,
  resolveClosure,
  type AptParagraph,
} from '../../harness/embedded/node-runtime.ts';

// `apt-cache show nodejs` on a Debian 12 machine with NodeSource's repository too.
const SHOW_NODEJS = `Package: nodejs
Version: 20.20.2-1nodesource1+repack1
Depends: libc6 (>= 2.28), libgcc1 (>= 1:3.4), libstdc++6 (>= 5.2), python3, ca-certificates
Description: Node.js event-based server-side javascript engine
 Node.js is similar in design to and influenced by systems like

Package: nodejs
Version: 18.20.4+dfsg-1~deb12u3
Depends: libc6 (>= 2.34), libnode108 (= 18.20.4+dfsg-1~deb12u3)

Package: nodejs
Version: 18.20.4+dfsg-1~deb12u2
Depends: libc6 (>= 2.34), libnode108 (= 18.20.4+dfsg-1~deb12u2)
`;

const naive = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

test('apt-cache show: paragraphs, fields, continuation lines', (t) => {
  const ps = parseAptShow(SHOW_NODEJS);
  t.equal(ps.length, 3);
  t.equal(ps[0]!.Version, '20.20.2-1nodesource1+repack1');
  t.match(ps[0]!.Description!, /engine\nNode\.js is similar/);
  t.equal(ps[2]!.Depends, 'libc6 (>= 2.34), libnode108 (= 18.20.4+dfsg-1~deb12u2)');
  t.end();
});

test('Depends: first alternative, no versions, no architecture qualifier', (t) => {
  t.deepEqual(parseDepends('node-xtend, nodejs:any | nodejs (<< 12.22.5~dfsg-4~)'), ['node-xtend', 'nodejs']);
  t.deepEqual(parseDepends('libc6 (>= 2.34), libnode108 (= 18.20.4+dfsg-1~deb12u3)'), ['libc6', 'libnode108']);
  t.deepEqual(parseDepends(undefined), []);
  t.end();
});

test("Debian's nodejs is the one that depends on libnodeNNN, never NodeSource's, the highest version", (t) => {
  t.deepEqual(pickDebianNode(parseAptShow(SHOW_NODEJS), naive), { name: 'nodejs', version: '18.20.4+dfsg-1~deb12u3' });
  t.equal(pickDebianNode(parseAptShow(SHOW_NODEJS.split('\n\n')[0]!), naive), undefined, 'only NodeSource: none');
  t.end();
});

test('closure: pinned versions followed, what dom0 has left out, unknown packages refused', async (t) => {
  const apt: Record<string, AptParagraph> = {
    'nodejs=18.20.4+dfsg-1~deb12u3': {
      Package: 'nodejs',
      Version: '18.20.4+dfsg-1~deb12u3',
      Depends: 'libc6 (>= 2.34), libnode108 (= 18.20.4+dfsg-1~deb12u3)',
    },
    'libnode108=18.20.4+dfsg-1~deb12u3': {
      Package: 'libnode108',
      Version: '18.20.4+dfsg-1~deb12u3',
      Depends: 'libc6 (>= 2.34), libgcc-s1 (>= 3.4), libstdc++6 (>= 11), node-acorn (>= 6.2.1~), node-undici',
    },
    'libstdc++6': { Package: 'libstdc++6', Version: '12.2.0-14', Depends: 'gcc-12-base (= 12.2.0-14), libc6 (>= 2.34), libgcc-s1 (>= 4.3)' },
    'node-acorn': { Package: 'node-acorn', Version: '8.8.1', Depends: 'node-xtend, nodejs:any | nodejs (<< 12.22.5~dfsg-4~)' },
    'node-undici': { Package: 'node-undici', Version: '5.15.0', Depends: 'node-busboy' },
    'node-busboy': { Package: 'node-busboy', Version: '1.6.0' },
    'node-xtend': { Package: 'node-xtend', Version: '4.0.2-3' },
  };
  const asked: string[] = [];
  const show = async (spec: string) => {
    asked.push(spec);
    return apt[spec];
  };
  const got = await resolveClosure({ name: 'nodejs', version: '18.20.4+dfsg-1~deb12u3' }, show);
  t.deepEqual(
    got.map((p) => `${p.name}=${p.version}`),
    [
      'libnode108=18.20.4+dfsg-1~deb12u3',
      'libstdc++6=12.2.0-14',
      'node-acorn=8.8.1',
      'node-busboy=1.6.0',
      'node-undici=5.15.0',
      'node-xtend=4.0.2-3',
      'nodejs=18.20.4+dfsg-1~deb12u3',
    ],
  );
  t.ok(asked.includes('libnode108=18.20.4+dfsg-1~deb12u3'), 'the exact pin is asked for, not the candidate');
  t.notOk(
    asked.some((s) => /^(libc6|libgcc-s1|gcc-12-base)/.test(s)),
    'what dom0 already has is never asked for',
  );
  delete apt['node-busboy'];
  try {
    await resolveClosure({ name: 'nodejs', version: '18.20.4+dfsg-1~deb12u3' }, show);
    t.fail('a missing package must be refused');
  } catch (e) {
    t.match(String(e), /apt knows no package node-busboy \(run: apt-get update\)/);
  }
  t.end();
});

test('readelf -d: the NEEDED libraries; what dom0 carries for Node is libc6 and libgcc-s1', (t) => {
  const out = [
    'Dynamic section at offset 0x2d50 contains 27 entries:',
    '  Tag        Type                         Name/Value',
    ' 0x0000000000000001 (NEEDED)             Shared library: [libnode.so.108]',
    ' 0x0000000000000001 (NEEDED)             Shared library: [libc.so.6]',
    ' 0x000000000000000e (SONAME)             Library soname: [libx.so.1]',
  ].join('\n');
  t.deepEqual(parseNeeded(out), ['libnode.so.108', 'libc.so.6']);
  t.deepEqual(DOM0_LIBRARIES, ['ld-linux-x86-64.so.2', 'libc.so.6', 'libm.so.6', 'libgcc_s.so.1']);
  t.end();
});
