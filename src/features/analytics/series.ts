import { shiftDay } from "./reports";

/** Every day from `from` to `to`, inclusive (both `YYYY-MM-DD`, `from` ≤ `to`). */
export function daysOf(from: string, to: string): string[] {
  const days: string[] = [];
  for (let day = from; day <= to; day = shiftDay(day, 1)) days.push(day);
  return days;
}

/**
 * A series ready to plot: one point per day of [from, to] in order, the days ClickHouse had nothing for as
 * zeros. `rows` carry their day in `date`; their other fields are the metrics (counts may arrive as strings).
 */
export function zeroFilled<M extends string>(
  from: string,
  to: string,
  metrics: readonly M[],
  rows: ({ date: string } & Partial<Record<M, string | number>>)[],
): ({ date: string } & Record<M, number>)[] {
  const byDay = new Map(rows.map((row) => [row.date, row]));
  return daysOf(from, to).map((date) => {
    const row = byDay.get(date);
    const point = { date } as { date: string } & Record<M, number>;
    for (const metric of metrics) (point as Record<string, number | string>)[metric] = Number(row?.[metric] ?? 0);
    return point;
  });
}

/** The sum of each metric over a series. */
export function totalsOf<M extends string>(metrics: readonly M[], series: Record<M, number>[]): Record<M, number> {
  const totals = {} as Record<M, number>;
  for (const metric of metrics) totals[metric] = series.reduce<number>((sum, point) => sum + point[metric], 0);
  return totals;
}
