// Writes the files of a run's report into one directory: JUnit XML, the HTML
// report and the raw results as JSON. Each file is written to a temporary
// name and renamed, so a reader never sees half a report.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunSummary } from '../matrix/result.ts';
import { toHtml } from './html.ts';
import { toJUnit } from './junit.ts';

export interface ReportFiles {
  junit: string;
  html: string;
  json: string;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

export function reportBaseName(s: RunSummary): string {
  return `xtv-${s.toolstack}-${s.matrix}`;
}

export async function writeReports(s: RunSummary, dir: string): Promise<ReportFiles> {
  await mkdir(dir, { recursive: true });
  const base = join(dir, reportBaseName(s));
  const files: ReportFiles = { junit: `${base}.junit.xml`, html: `${base}.html`, json: `${base}.json` };
  await writeAtomic(files.junit, toJUnit(s));
  await writeAtomic(files.html, toHtml(s));
  await writeAtomic(files.json, JSON.stringify(s, null, 2) + '\n');
  return files;
}
