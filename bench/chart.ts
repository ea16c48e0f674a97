// The benchmark's SVG chart: p50 latency against concurrency per model (log scale), and the
// throughput each target reached with all models at once, split by model.
import type { Measurement } from './stress';

const COLOURS: Record<string, string> = { det: '#1f77b4', rec: '#ff7f0e', cls: '#2ca02c' };

function escape(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

export function renderChart(results: Measurement[], targetName: string): string {
  const W = 980;
  const H = 420;
  const parts: string[] = [];
  const text = (x: number, y: number, s: string, extra = '') => parts.push(`<text x="${x}" y="${y}" font-family="sans-serif" font-size="12" ${extra}>${escape(s)}</text>`);

  // Panel 1: latency against concurrency.
  const one = results.filter((r) => r.scenario === 'one model');
  const concurrencies = [...new Set(one.map((r) => r.concurrency))].sort((a, b) => a - b);
  const lat = one.map((r) => Math.max(0.1, r.p50));
  const [lo, hi] = [Math.log10(Math.min(...lat)) - 0.1, Math.log10(Math.max(...lat)) + 0.1];
  const px = (i: number) => 70 + (concurrencies.length > 1 ? (i * 360) / (concurrencies.length - 1) : 180);
  const py = (ms: number) => 360 - ((Math.log10(Math.max(0.1, ms)) - lo) / (hi - lo || 1)) * 300;
  text(70, 30, 'p50 latency (ms, log scale), one model at a time', 'font-weight="bold"');
  parts.push(`<line x1="70" y1="360" x2="430" y2="360" stroke="#333"/><line x1="70" y1="60" x2="70" y2="360" stroke="#333"/>`);
  concurrencies.forEach((c, i) => text(px(i) - 4, 378, String(c)));
  for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) {
    parts.push(`<line x1="66" y1="${py(10 ** e)}" x2="430" y2="${py(10 ** e)}" stroke="#ddd"/>`);
    text(30, py(10 ** e) + 4, String(10 ** e));
  }
  text(230, 398, 'concurrency');
  for (const model of [...new Set(one.map((r) => r.model))]) {
    for (const target of [targetName, 'in-process']) {
      const points = concurrencies
        .map((c, i) => ({ i, r: one.find((r) => r.model === model && r.target === target && r.concurrency === c) }))
        .filter((p) => p.r)
        .map((p) => `${px(p.i)},${py(p.r!.p50)}`);
      const dash = target === 'in-process' ? ' stroke-dasharray="5,4"' : '';
      parts.push(`<polyline points="${points.join(' ')}" fill="none" stroke="${COLOURS[model]}" stroke-width="2"${dash}/>`);
    }
  }

  // Panel 2: throughput with all models at once.
  const all = results.filter((r) => r.scenario === 'all at once');
  const targets = [targetName, 'in-process'];
  const totals = targets.map((t) => all.filter((r) => r.target === t).reduce((a, r) => a + r.throughput, 0));
  const max = Math.max(...totals, 1);
  text(540, 30, 'throughput (req/s), all models at once', 'font-weight="bold"');
  parts.push(`<line x1="520" y1="360" x2="940" y2="360" stroke="#333"/>`);
  targets.forEach((t, i) => {
    let y = 360;
    const x = 560 + i * 190;
    for (const r of all.filter((m) => m.target === t)) {
      const h = (r.throughput / max) * 280;
      y -= h;
      parts.push(`<rect x="${x}" y="${y}" width="120" height="${h}" fill="${COLOURS[r.model]}"/>`);
    }
    text(x, 378, t.length > 24 ? `${t.slice(0, 24)}…` : t);
    text(x, y - 6, `${totals[i].toFixed(0)} req/s`);
  });

  // Legend.
  Object.entries(COLOURS).forEach(([model, colour], i) => {
    parts.push(`<rect x="${70 + i * 90}" y="${H - 12}" width="12" height="12" fill="${colour}"/>`);
    text(88 + i * 90, H - 2, model);
  });
  text(360, H - 2, `solid: ${targetName}; dashed: in-process baseline`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H + 10}" viewBox="0 0 ${W} ${H + 10}"><rect width="100%" height="100%" fill="white"/>${parts.join('')}</svg>\n`;
}
