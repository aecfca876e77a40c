//! TfIdfVectorizer: counts the n-grams of the pool (`pool_int64s` or `pool_strings`, grouped
//! by length via `ngram_counts`) in each row of a [C] or [N, C] input, for lengths
//! min..=max_gram_length and gaps of 0..=max_skip_count between items (unigrams counted once),
//! at the coordinates `ngram_indexes`; `mode` TF gives counts, IDF weights of present
//! n-grams, TFIDF counts times weights (weights default to 1). Output is f32.

use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_ir::Attr;
use kiln_tensor::{Data, Tensor};
use std::collections::HashMap;

pub fn tfidf_vectorizer(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let (rows, cols, batched) = match *x.shape() {
        [c] => (1, c, false),
        [n, c] => (n, c, true),
        ref s => bail!("TfIdfVectorizer input must be [C] or [N, C], got {s:?}"),
    };
    let min_n = ctx.req_i("min_gram_length")?;
    let max_n = ctx.req_i("max_gram_length")?;
    let max_skip = ctx.req_i("max_skip_count")?;
    if min_n < 1 || max_n < min_n || max_skip < 0 {
        bail!("need 1 <= min_gram_length <= max_gram_length and max_skip_count >= 0, got {min_n}, {max_n}, {max_skip}");
    }
    let (min_n, max_n, max_skip) = (min_n as usize, max_n as usize, max_skip as usize);
    let mode = ctx.attr_s("mode", "TF");
    if !matches!(mode, "TF" | "IDF" | "TFIDF") {
        bail!("attribute 'mode' must be TF, IDF or TFIDF, got '{mode}'");
    }
    let counts = ctx.req_ints("ngram_counts")?;
    let indexes = ctx.req_ints("ngram_indexes")?;
    if indexes.iter().any(|&i| i < 0) {
        bail!("'ngram_indexes' must be non-negative, got {indexes:?}");
    }
    let width = indexes.iter().max().map_or(0, |&m| m as usize + 1);
    let weights = ctx.attr_floats("weights");
    if let Some(w) = weights
        && w.len() < width
    {
        bail!("'weights' has {} entries for {width} output coordinates", w.len());
    }
    // Tokens as ids: int pools use the values; string pools the position of the string in the
    // pool (input strings not in the pool can match nothing).
    let (pool, tokens): (Vec<i64>, Vec<Option<i64>>) = match ctx.node.attr("pool_strings").and_then(Attr::as_strings) {
        Some(strs) => {
            let Data::String(xs) = x.data() else { bail!("string pool needs a string input, got {}", x.dtype()) };
            let ids: HashMap<&str, i64> = strs.iter().enumerate().map(|(i, s)| (s.as_str(), i as i64)).collect();
            let pool = strs.iter().map(|s| ids.get(s.as_str()).copied().unwrap_or(-1)).collect();
            (pool, xs.iter().map(|s| ids.get(s.as_str()).copied()).collect())
        }
        None => {
            let pool = ctx.req_ints("pool_int64s")?.to_vec();
            if !x.dtype().is_int() {
                bail!("an int64 pool needs an integer input, got {}", x.dtype());
            }
            (pool, x.to_i64_vec()?.into_iter().map(Some).collect())
        }
    };
    // n-gram (as token ids) -> output coordinate.
    let mut table: HashMap<Vec<i64>, usize> = HashMap::new();
    let mut ordinal = 0;
    for (g, &start) in counts.iter().enumerate() {
        let n = g + 1;
        let end = counts.get(g + 1).copied().unwrap_or(pool.len() as i64);
        if start < 0 || end < start || end as usize > pool.len() || !((end - start) as usize).is_multiple_of(n) {
            bail!("'ngram_counts' {counts:?} does not split a pool of {} items into whole {n}-grams", pool.len());
        }
        for gram in pool[start as usize..end as usize].chunks(n) {
            let Some(&coord) = indexes.get(ordinal) else { bail!("'ngram_indexes' has fewer entries than the pool has n-grams") };
            table.insert(gram.to_vec(), coord as usize);
            ordinal += 1;
        }
    }
    let mut out = vec![0f32; rows * width];
    let mut gram = Vec::with_capacity(max_n);
    for r in 0..rows {
        let row = &tokens[r * cols..(r + 1) * cols];
        let acc = &mut out[r * width..(r + 1) * width];
        // Longer n-grams or wider gaps than the row cannot occur: the loops stop at its length.
        for n in min_n..=max_n.min(cols) {
            let skips = if n == 1 { 0 } else { max_skip.min(cols) };
            for skip in 0..=skips {
                let span = (n - 1) * (skip + 1);
                for start in 0..cols.saturating_sub(span) {
                    gram.clear();
                    gram.extend((0..n).map_while(|j| row[start + j * (skip + 1)]));
                    if gram.len() == n
                        && let Some(&c) = table.get(&gram)
                    {
                        acc[c] += 1.0;
                    }
                }
            }
        }
    }
    let weight = |c: usize| weights.and_then(|w| w.get(c)).copied().unwrap_or(1.0);
    for (i, v) in out.iter_mut().enumerate() {
        let c = i % width.max(1);
        *v = match mode {
            "IDF" => {
                if *v > 0.0 {
                    weight(c)
                } else {
                    0.0
                }
            }
            "TFIDF" => *v * weight(c),
            _ => *v,
        };
    }
    let shape = if batched { vec![rows, width] } else { vec![width] };
    Ok(vec![Tensor::from_vec(shape, out)?])
}
