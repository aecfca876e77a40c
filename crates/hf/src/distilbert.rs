//! DistilBERT (`model_type` "distilbert"): BERT's encoder without token types, its own weight
//! names (`transformer.layer.N.attention.q_lin`, ...), config keys `dim`, `n_heads`,
//! `n_layers`, `hidden_dim`, `activation`, and LayerNorm eps fixed at 1e-12.

use crate::bert::{batch_seq, encoder_outputs};
use crate::encoder::{self, Activation, EncoderSpec, LayerNames, Linear, Norm};
use crate::graph::GraphBuilder;
use crate::registry::{Architecture, Cx};
use crate::{HfError, Weights};
use kiln_tensor::DType;

pub struct DistilBert;

fn layer_names(i: usize) -> LayerNames {
    let l = format!("transformer.layer.{i}");
    LayerNames {
        query: Linear::at(&format!("{l}.attention.q_lin")),
        key: Linear::at(&format!("{l}.attention.k_lin")),
        value: Linear::at(&format!("{l}.attention.v_lin")),
        attn_out: Linear::at(&format!("{l}.attention.out_lin")),
        attn_norm: Norm::at(&format!("{l}.sa_layer_norm")),
        ff_in: Linear::at(&format!("{l}.ffn.lin1")),
        ff_out: Linear::at(&format!("{l}.ffn.lin2")),
        out_norm: Norm::at(&format!("{l}.output_layer_norm")),
    }
}

impl Architecture for DistilBert {
    fn model_types(&self) -> &'static [&'static str] {
        &["distilbert"]
    }

    fn build(&self, cx: &Cx, b: &mut GraphBuilder) -> Result<(), HfError> {
        let c = cx.config;
        let spec = EncoderSpec {
            hidden: c.usize_or("dim", 768)?,
            heads: c.usize_or("n_heads", 12)?,
            intermediate: c.usize_or("hidden_dim", 3072)?,
            act: Activation::from_config(c.str_or("activation", "gelu")?)?,
            eps: 1e-12,
        };
        spec.check()?;
        let layers = c.usize_or("n_layers", 6)?;
        let vocab = c.usize("vocab_size")?;
        let max_pos = c.usize_or("max_position_embeddings", 512)?;
        let w = Weights::new(cx.checkpoint, &["", "distilbert."], "embeddings.word_embeddings.weight")?;
        let h = spec.hidden;
        let dims = batch_seq();
        let ids = b.input("input_ids", DType::I64, &dims);
        let mask = b.input("attention_mask", DType::I64, &dims);
        b.set_scope("embeddings");
        let word = b.init(&w.full_name("embeddings.word_embeddings.weight"), w.get("embeddings.word_embeddings.weight", &[vocab, h])?);
        // Sinusoidal or learned, the table is in the checkpoint.
        let pos_table = b.init(&w.full_name("embeddings.position_embeddings.weight"), w.get("embeddings.position_embeddings.weight", &[max_pos, h])?);
        let x = encoder::embed(b, word, ids);
        let pos_ids = encoder::positions(b, ids);
        let pos = encoder::embed(b, pos_table, pos_ids);
        let x = b.op("Add", &[x, pos], vec![]);
        let mut x = encoder::layer_norm(b, &w, x, &Norm::at("embeddings.LayerNorm"), h, spec.eps)?;
        let mask_f = encoder::mask_f32(b, mask);
        let bias = encoder::mask_bias(b, mask_f);
        for i in 0..layers {
            b.set_scope(&format!("transformer/layer.{i}"));
            x = encoder::layer(b, &w, x, bias, &spec, &layer_names(i))?;
        }
        encoder_outputs(cx, b, x, h, mask);
        Ok(())
    }
}
