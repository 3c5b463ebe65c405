//! `report`: the cluster in one self-contained HTML file ([`html`]) made from one serde
//! document ([`doc`]) that the file embeds and `report --from` reads back.

pub mod doc;
pub mod html;
