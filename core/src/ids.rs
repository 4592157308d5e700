//! Deterministic identities. Random ids are made by the IO shells and passed
//! in; the ones here are derived, so that every replica derives the same.

use automerge::ActorId;
use sha2::{Digest, Sha256};
use uuid::Uuid;

const NS_CONVERSATION: Uuid = Uuid::from_u128(0x6f1c_2a8e_4b7d_4e0a_9c3f_51d2_a7e8_0b14);
const NS_GENESIS: Uuid = Uuid::from_u128(0x0d9b_33c4_17aa_4f26_b0e1_7c5a_92f4_6e38);
const NS_PREFILL: Uuid = Uuid::from_u128(0x8a47_e5f0_2c61_4b93_ae0d_3f17_c6b8_5d29);

/// The ticket id of a conversation: the same on every device, so that two
/// offline agents creating a ticket from one conversation create one ticket.
pub fn conversation_ticket_id(conversation_id: &str) -> Uuid {
    Uuid::new_v5(&NS_CONVERSATION, conversation_id.as_bytes())
}

/// The actor of a document's genesis change, derived from the ticket id and
/// the document kind.
pub fn genesis_actor(ticket: Uuid, kind: &str) -> ActorId {
    let mut name = ticket.as_bytes().to_vec();
    name.extend_from_slice(kind.as_bytes());
    ActorId::from(Uuid::new_v5(&NS_GENESIS, &name).as_bytes().as_slice())
}

/// The actor of a conversation prefill change: derived from the ticket and
/// the prefill content, so identical prefills made on two devices are one
/// change (same hash) and different ones never share an actor and sequence.
pub fn prefill_actor(ticket: Uuid, content: &str) -> ActorId {
    let mut name = ticket.as_bytes().to_vec();
    name.extend_from_slice(&Sha256::digest(content.as_bytes()));
    ActorId::from(Uuid::new_v5(&NS_PREFILL, &name).as_bytes().as_slice())
}

/// The replica id used in clock stamps: the first 8 bytes of the device's
/// actor, in hex.
pub fn replica_of(actor: &ActorId) -> String {
    let hex = actor.to_hex_string();
    hex.chars().take(16).collect()
}
