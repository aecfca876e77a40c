//! BERT (`model_type` "bert"): learned absolute positions, token types, post-norm encoder.
//! RoBERTa-style models reuse [`build_bert_like`] with their own position ids.

use crate::encoder::{self, Activation, EncoderSpec, LayerNames, Linear, Norm};
use crate::graph::GraphBuilder;
use crate::registry::{Architecture, Cx};
use crate::{HfError, Weights, pooling};
use kiln_ir::ValueId;
use kiln_tensor::{DType, Dim};

pub struct Bert;

impl Architecture for Bert {
    fn model_types(&self) -> &'static [&'static str] {
        &["bert"]
    }

    fn build(&self, cx: &Cx, b: &mut GraphBuilder) -> Result<(), HfError> {
        build_bert_like(cx, b, &["", "bert."], Positions::Absolute, 2)
    }
}

/// How position ids are made.
pub enum Positions {
    /// 0..sequence (BERT).
    Absolute,
    /// padding_idx + 1 + running count of non-pad tokens, padding_idx at pads (RoBERTa).
    FromPadding { pad: i64 },
}

/// The encoder's layer weights, as BERT and RoBERTa name them.
pub fn bert_layer_names(i: usize) -> LayerNames {
    let l = format!("encoder.layer.{i}");
    LayerNames {
        query: Linear::at(&format!("{l}.attention.self.query")),
        key: Linear::at(&format!("{l}.attention.self.key")),
        value: Linear::at(&format!("{l}.attention.self.value")),
        attn_out: Linear::at(&format!("{l}.attention.output.dense")),
        attn_norm: Norm::at(&format!("{l}.attention.output.LayerNorm")),
        ff_in: Linear::at(&format!("{l}.intermediate.dense")),
        ff_out: Linear::at(&format!("{l}.output.dense")),
        out_norm: Norm::at(&format!("{l}.output.LayerNorm")),
    }
}

/// The symbolic [batch, sequence] of the inputs.
pub fn batch_seq() -> [Dim; 2] {
    [Dim::Sym("batch".into()), Dim::Sym("sequence".into())]
}

pub fn build_bert_like(cx: &Cx, b: &mut GraphBuilder, prefixes: &[&str], positions: Positions, default_type_vocab: usize) -> Result<(), HfError> {
    let c = cx.config;
    let spec = EncoderSpec {
        hidden: c.usize("hidden_size")?,
        heads: c.usize("num_attention_heads")?,
        intermediate: c.usize("intermediate_size")?,
        act: Activation::from_config(c.str_or("hidden_act", "gelu")?)?,
        eps: c.f64_or("layer_norm_eps", 1e-12)? as f32,
    };
    spec.check()?;
    let layers = c.usize("num_hidden_layers")?;
    let vocab = c.usize("vocab_size")?;
    let max_pos = c.usize("max_position_embeddings")?;
    let pos_type = c.str_or("position_embedding_type", "absolute")?;
    if pos_type != "absolute" {
        return Err(HfError::Unsupported {
            what: format!("position_embedding_type \"{pos_type}\""),
            hint: "Kiln builds absolute position embeddings".into(),
        });
    }
    let w = Weights::new(cx.checkpoint, prefixes, "embeddings.word_embeddings.weight")?;
    let h = spec.hidden;
    let dims = batch_seq();
    let ids = b.input("input_ids", DType::I64, &dims);
    let mask = b.input("attention_mask", DType::I64, &dims);
    let type_vocab = c.usize_or("type_vocab_size", default_type_vocab)?;
    let has_types = w.has("embeddings.token_type_embeddings.weight");
    let type_input = has_types && cx.opts.token_type_ids.unwrap_or(type_vocab > 1);
    let types = type_input.then(|| b.input("token_type_ids", DType::I64, &dims));

    b.set_scope("embeddings");
    let word_table = b.init(&w.full_name("embeddings.word_embeddings.weight"), w.get("embeddings.word_embeddings.weight", &[vocab, h])?);
    let pos_table = b.init(&w.full_name("embeddings.position_embeddings.weight"), w.get("embeddings.position_embeddings.weight", &[max_pos, h])?);
    let mut x = encoder::embed(b, word_table, ids);
    let pos_ids = match positions {
        Positions::Absolute => encoder::positions(b, ids),
        Positions::FromPadding { pad } => padding_positions(b, ids, pad),
    };
    let pos = encoder::embed(b, pos_table, pos_ids);
    x = b.op("Add", &[x, pos], vec![]);
    if has_types {
        let name = "embeddings.token_type_embeddings.weight";
        let table = b.init(&w.full_name(name), w.get(name, &[type_vocab, h])?);
        // Without a token_type_ids input every token is type 0.
        let t = match types {
            Some(t) => encoder::embed(b, table, t),
            None => {
                let zero = b.scalar_i64("zero_i64", 0);
                encoder::embed(b, table, zero)
            }
        };
        x = b.op("Add", &[x, t], vec![]);
    }
    x = encoder::layer_norm(b, &w, x, &Norm::at("embeddings.LayerNorm"), h, spec.eps)?;

    let mask_f = encoder::mask_f32(b, mask);
    let bias = encoder::mask_bias(b, mask_f);
    for i in 0..layers {
        b.set_scope(&format!("encoder/layer.{i}"));
        x = encoder::layer(b, &w, x, bias, &spec, &bert_layer_names(i))?;
    }
    encoder_outputs(cx, b, x, h, mask);
    Ok(())
}

/// RoBERTa's position ids: pad + cumsum(ids != pad) * (ids != pad).
fn padding_positions(b: &mut GraphBuilder, ids: ValueId, pad: i64) -> ValueId {
    let pad_v = b.scalar_i64("padding_idx", pad);
    let is_pad = b.op("Equal", &[ids, pad_v], vec![]);
    let keep = b.op("Not", &[is_pad], vec![]);
    let keep = b.op("Cast", &[keep], vec![("to", kiln_ir::Attr::Int(i64::from(DType::I64.to_onnx())))]);
    let axis = b.scalar_i64("one_i64", 1);
    let count = b.op("CumSum", &[keep, axis], vec![]);
    let count = b.op("Mul", &[count, keep], vec![]);
    b.op("Add", &[count, pad_v], vec![])
}

/// `last_hidden_state` [batch, sequence, hidden], and `sentence_embedding` [batch, hidden] when
/// the head pools.
pub fn encoder_outputs(cx: &Cx, b: &mut GraphBuilder, hidden: ValueId, size: usize, mask: ValueId) {
    let [batch, seq] = batch_seq();
    let pooled = pooling::add_head(b, cx.head, hidden, mask);
    b.output(hidden, "last_hidden_state", DType::F32, &[batch.clone(), seq, Dim::Known(size)]);
    if let Some(p) = pooled {
        b.output(p, "sentence_embedding", DType::F32, &[batch, Dim::Known(size)]);
    }
}
