/**
 * Edit distance counting insertions, deletions, substitutions and swaps of neighbours as one edit each
 * (optimal string alignment), for "did you mean" hints on misspelt keys and names: `hots` → `host`.
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row[j] = j;
        continue;
      }
      const above = rows[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(
        (above[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (above[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      }
      row[j] = best;
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
}

/** `tokenfile`, `token_file` and `token-file` all read as `tokenFile`. */
function normalize(word: string): string {
  return word.toLowerCase().replace(/[-_\s]/g, '');
}

/** The closest candidate within a small edit distance, or undefined when none is plausibly meant. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const target = normalize(word);
  const limit = Math.min(3, Math.max(1, Math.floor(target.length / 3)));
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    if (candidate === word) continue;
    const distance = editDistance(target, normalize(candidate));
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** ` (did you mean "auth"?)`, or an empty string. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const match = closest(word, candidates);
  return match === undefined ? '' : ` (did you mean "${match}"?)`;
}
