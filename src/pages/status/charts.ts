/**
 * The status page's small time-series charts (uPlot): the last five minutes, one point a
 * second. A missing sample is a gap in the line, not a slope across it.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { StatusSample } from '../../server/status_types.ts';

const MAX_POINTS = 300;

interface SeriesSpec {
  label: string;
  stroke: string;
  value: (sample: StatusSample) => number | null;
  dash?: number[];
}

export interface ChartSpec {
  target: string;
  unit: string;
  series: SeriesSpec[];
}

function maxWorkerLag(sample: StatusSample): number | null {
  const lags = sample.workers.map((worker) => worker.lagMs).filter((lag): lag is number => lag !== null);
  return lags.length > 0 ? Math.max(...lags) : null;
}

export const CHARTS: ChartSpec[] = [
  { target: 'chart-messages', unit: '/s', series: [
    { label: 'in', stroke: '#2563eb', value: (s) => s.messagesInPerS },
    { label: 'out', stroke: '#16a34a', value: (s) => s.messagesOutPerS },
  ] },
  { target: 'chart-latency', unit: 'ms', series: [
    { label: 'commit p99', stroke: '#dc2626', value: (s) => s.commitP99Ms },
    { label: 'commit p50', stroke: '#f59e0b', value: (s) => s.commitP50Ms },
    { label: 'fan-out p99', stroke: '#7c3aed', value: (s) => s.fanOutP99Ms, dash: [4, 3] },
  ] },
  { target: 'chart-lag', unit: 'ms', series: [
    { label: 'main', stroke: '#0f766e', value: (s) => s.mainLagMs },
    // History samples carry no workers: null there, a gap.
    { label: 'workers (max)', stroke: '#db2777', value: maxWorkerLag },
  ] },
  { target: 'chart-load', unit: '', series: [
    { label: 'connections', stroke: '#2563eb', value: (s) => s.connections },
    { label: 'channels', stroke: '#9333ea', value: (s) => s.channels },
  ] },
];

class Chart {
  readonly #spec: ChartSpec;
  readonly #plot: uPlot;
  readonly #data: (number | null)[][];

  constructor(spec: ChartSpec, parent: HTMLElement) {
    this.#spec = spec;
    this.#data = [[], ...spec.series.map(() => [])];
    const width = Math.max(260, parent.clientWidth || 320);
    this.#plot = new uPlot({
      width,
      height: 150,
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.15)] } },
      axes: [
        { stroke: '#656d76', grid: { stroke: '#eef0f3' }, ticks: { stroke: '#d8dee4' }, font: '11px system-ui, sans-serif' },
        { stroke: '#656d76', grid: { stroke: '#eef0f3' }, ticks: { stroke: '#d8dee4' }, font: '11px system-ui, sans-serif', size: 54, values: (_u, ticks) => ticks.map((tick) => `${+tick.toFixed(2)}${spec.unit === '/s' ? '' : spec.unit}`) },
      ],
      series: [{}, ...spec.series.map((series) => ({ label: series.label, stroke: series.stroke, width: 1.5, dash: series.dash, spanGaps: false }))],
    }, this.#data as uPlot.AlignedData, parent);
  }

  push(samples: readonly StatusSample[]): void {
    for (const sample of samples) {
      const t = sample.t / 1000;
      const last = this.#data[0].at(-1);
      // More than two intervals without a sample (the page or the server away): a gap.
      if (last !== undefined && last !== null && t - last > 2.5) {
        this.#data[0].push(last + 1);
        for (let i = 1; i < this.#data.length; i++) this.#data[i].push(null);
      }
      this.#data[0].push(t);
      this.#spec.series.forEach((series, i) => this.#data[i + 1].push(series.value(sample)));
    }
    for (const column of this.#data) if (column.length > MAX_POINTS) column.splice(0, column.length - MAX_POINTS);
    this.#plot.setData(this.#data as uPlot.AlignedData);
  }

  resize(width: number): void {
    this.#plot.setSize({ width: Math.max(260, width), height: 150 });
  }
}

export class Charts {
  readonly #charts: { chart: Chart; parent: HTMLElement }[] = [];

  constructor() {
    for (const spec of CHARTS) {
      const parent = document.getElementById(spec.target);
      if (parent) this.#charts.push({ chart: new Chart(spec, parent), parent });
    }
    window.addEventListener('resize', () => {
      for (const { chart, parent } of this.#charts) chart.resize(parent.clientWidth);
    });
  }

  push(samples: readonly StatusSample[]): void {
    for (const { chart } of this.#charts) chart.push(samples);
  }
}
