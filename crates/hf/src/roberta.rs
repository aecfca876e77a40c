//! RoBERTa and XLM-RoBERTa (`model_type` "roberta", "xlm-roberta", "camembert"): BERT's encoder
//! with position ids counted from `pad_token_id + 1` over non-pad tokens and, usually, a single
//! token type.

use crate::HfError;
use crate::bert::{Positions, build_bert_like};
use crate::graph::GraphBuilder;
use crate::registry::{Architecture, Cx};

pub struct Roberta;

impl Architecture for Roberta {
    fn model_types(&self) -> &'static [&'static str] {
        &["roberta", "xlm-roberta", "camembert"]
    }

    fn build(&self, cx: &Cx, b: &mut GraphBuilder) -> Result<(), HfError> {
        let pad = cx.config.i64_or("pad_token_id", 1)?;
        build_bert_like(cx, b, &["", "roberta.", "xlm_roberta.", "camembert."], Positions::FromPadding { pad }, 1)
    }
}
