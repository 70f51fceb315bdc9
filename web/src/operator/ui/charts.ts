/**
 * One live uPlot chart (bitrate, loss, jitter or RTT) with one line per participant. The x range is
 * the last few minutes ending at the newest sample, so the chart scrolls steadily; gaps (null) stay
 * gaps. The plot is rebuilt only when the set of participants changes; otherwise each snapshot is
 * a `setData`. Test hooks on the container: `data-points` (x values drawn), `data-series`
 * (participant lines), `data-last` (newest x, unix ms), `data-redraws`.
 */
import uPlot from "uplot";
import { clock } from "../format";

export interface ChartSpec {
  /** Container id is `chart-${id}`. */
  id: "bitrate" | "loss" | "jitter" | "rtt";
  /** Smallest top of the y range, so a quiet line does not fill the chart with noise. */
  floor: number;
  /** Axis tick label. */
  tick(v: number): string;
}

export interface ChartLine {
  label: string;
  color: string;
}

const AXIS = "#9aa7ba";
const GRID = "rgba(154, 167, 186, 0.13)";

export class LiveChart {
  private plot: uPlot | null = null;
  private seriesKey = "";
  private redraws = 0;
  private range: [number, number] = [0, 1];
  private readonly resize: ResizeObserver;
  private readonly empty: HTMLElement;

  constructor(
    private readonly container: HTMLElement,
    private readonly spec: ChartSpec,
  ) {
    this.empty = document.createElement("div");
    this.empty.className = "chart-empty";
    this.empty.textContent = "No samples yet";
    this.container.append(this.empty);
    this.container.dataset.points = "0";
    this.container.dataset.series = "0";
    this.container.dataset.redraws = "0";
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(this.container);
  }

  private size(): { width: number; height: number } {
    return {
      width: Math.max(120, Math.floor(this.container.clientWidth)),
      height: Math.max(100, Math.floor(this.container.clientHeight)),
    };
  }

  private fit(): void {
    if (this.plot === null) return;
    const { width, height } = this.size();
    if (this.plot.width !== width || this.plot.height !== height) this.plot.setSize({ width, height });
  }

  private build(lines: ChartLine[], data: uPlot.AlignedData): void {
    this.plot?.destroy();
    const spec = this.spec;
    const opts: uPlot.Options = {
      ...this.size(),
      class: "live-chart",
      padding: [10, 12, 0, 0],
      legend: { show: false },
      cursor: { sync: { key: "dragoman-call" }, drag: { x: false, y: false, setScale: false }, points: { size: 6 } },
      scales: {
        x: { time: true, range: () => this.range },
        y: {
          range: (_u, _min, max) => {
            const top = max === null || !Number.isFinite(max) ? spec.floor : Math.max(spec.floor, max * 1.15);
            return [0, top];
          },
        },
      },
      axes: [
        {
          stroke: AXIS,
          grid: { stroke: GRID, width: 1 },
          ticks: { stroke: GRID, width: 1, size: 4 },
          font: "11px system-ui, sans-serif",
          size: 30,
          space: 60,
          // Whole minutes only: labels are HH:MM.
          incrs: [60, 120, 300, 600, 900, 1800, 3600],
          values: (_u, splits) => splits.map((s) => clock(s)),
        },
        {
          stroke: AXIS,
          grid: { stroke: GRID, width: 1 },
          ticks: { stroke: GRID, width: 1, size: 4 },
          font: "11px system-ui, sans-serif",
          size: 52,
          space: 28,
          values: (_u, splits) => splits.map((s) => spec.tick(s)),
        },
      ],
      series: [
        {},
        ...lines.map((l) => ({
          label: l.label,
          stroke: l.color,
          width: 1.75,
          spanGaps: false,
          points: { show: false },
        })),
      ],
    };
    this.plot = new uPlot(opts, data, this.container);
  }

  /**
   * Draws `x` (unix ms) and one y array per line over [fromMs, toMs]. Rebuilds the plot when the
   * lines changed (who is in the call, or their colours).
   */
  update(x: number[], ys: (number | null)[][], lines: ChartLine[], fromMs: number, toMs: number): void {
    this.range = [fromMs / 1000, Math.max(toMs, fromMs + 1000) / 1000];
    const data: uPlot.AlignedData = [x.map((t) => t / 1000), ...ys];
    const key = JSON.stringify(lines);
    if (key !== this.seriesKey || this.plot === null) {
      this.seriesKey = key;
      this.build(lines, data);
    } else {
      this.plot.setData(data, true);
    }
    this.redraws += 1;
    const drawn = ys.some((y) => y.some((v) => v !== null));
    this.empty.hidden = drawn;
    this.container.dataset.points = String(x.length);
    this.container.dataset.series = String(lines.length);
    this.container.dataset.last = String(x[x.length - 1] ?? "");
    this.container.dataset.redraws = String(this.redraws);
  }

  destroy(): void {
    this.resize.disconnect();
    this.plot?.destroy();
    this.plot = null;
    this.container.replaceChildren();
  }
}
