// Word-level diff of two texts by longest common subsequence.
// Tokens are words with the whitespace after them, so joining the tokens of
// each side gives back its text exactly. The LCS table is O(n·m); past
// MAX_CELLS the common prefix and suffix are kept and the middle is shown as
// one deletion and one insertion (still correct, just coarser).

const MAX_CELLS = 4_000_000;

export function tokenize(text) {
  return String(text ?? "").match(/\s+|[^\s]+\s*/g) || [];
}

/** [{op: "eq" | "del" | "ins", text}] turning `a` into `b`, adjacent ops merged. */
export function diffWords(a, b) {
  const x = tokenize(a);
  const y = tokenize(b);
  // Trim the common ends first: outputs often share an opening and a close.
  let start = 0;
  while (start < x.length && start < y.length && x[start] === y[start]) start += 1;
  let endX = x.length;
  let endY = y.length;
  while (endX > start && endY > start && x[endX - 1] === y[endY - 1]) { endX -= 1; endY -= 1; }
  const ops = [];
  const push = (op, text) => {
    const last = ops[ops.length - 1];
    if (last && last.op === op) last.text += text;
    else ops.push({ op, text });
  };
  for (let i = 0; i < start; i += 1) push("eq", x[i]);
  const xs = x.slice(start, endX);
  const ys = y.slice(start, endY);
  const n = xs.length;
  const m = ys.length;
  if (n * m > MAX_CELLS) {
    push("del", xs.join(""));
    push("ins", ys.join(""));
  } else if (n || m) {
    // lcs[i][j] = LCS length of xs[i:] and ys[j:], in one flat typed array.
    const w = m + 1;
    const lcs = new Uint32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i -= 1) {
      for (let j = m - 1; j >= 0; j -= 1) {
        lcs[i * w + j] = xs[i] === ys[j]
          ? lcs[(i + 1) * w + j + 1] + 1
          : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n && j < m) {
      if (xs[i] === ys[j]) { push("eq", xs[i]); i += 1; j += 1; }
      else if (lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) { push("del", xs[i]); i += 1; }
      else { push("ins", ys[j]); j += 1; }
    }
    while (i < n) { push("del", xs[i]); i += 1; }
    while (j < m) { push("ins", ys[j]); j += 1; }
  }
  for (let i = endX; i < x.length; i += 1) push("eq", x[i]);
  return ops;
}

/** Share of words the two sides have in common (0..1): 2·common / (|a| + |b|). */
export function similarity(ops) {
  const count = (text) => tokenize(text).filter((t) => t.trim()).length;
  let eq = 0;
  let other = 0;
  for (const o of ops) {
    if (o.op === "eq") eq += count(o.text);
    else other += count(o.text);
  }
  const total = 2 * eq + other;
  return total ? (2 * eq) / total : 1;
}
