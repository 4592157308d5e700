//! A connection that runs a hook just before its next page commit (or its
//! next conversation write): how the suite makes another push (or webhook
//! delivery) land between a push's read and its commit.

use tickets_core::index::{ListQuery, SlaCounts};
use tickets_core::protocol::Settings;
use tickets_core::sla::SlaSettings;
use tickets_relay::store::inbox::*;
use tickets_relay::store::*;

pub struct Interleave<'a> {
    pub inner: Box<dyn RelayStore + Send>,
    pub before_commit: Option<Box<dyn FnOnce() + 'a>>,
}

impl InboxStore for Interleave<'_> {
    fn add_inbox(
        &mut self,
        name: &str,
        kind: &str,
        team: Option<&str>,
        secret_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.inner.add_inbox(name, kind, team, secret_hash, now)
    }
    fn remove_inbox(&mut self, name: &str) -> Result<bool, StoreError> {
        self.inner.remove_inbox(name)
    }
    fn inboxes(&mut self) -> Result<Vec<InboxRow>, StoreError> {
        self.inner.inboxes()
    }
    fn inbox_by_secret(&mut self, secret_hash: &str) -> Result<Option<InboxRef>, StoreError> {
        self.inner.inbox_by_secret(secret_hash)
    }
    fn conversation(&mut self, id: &str) -> Result<Option<StoredConversation>, StoreError> {
        self.inner.conversation(id)
    }
    fn put_conversation(&mut self, w: &ConversationWrite<'_>) -> Result<ConversationCommit, StoreError> {
        if let Some(f) = self.before_commit.take() {
            f();
        }
        self.inner.put_conversation(w)
    }
    fn inbox_head(&mut self) -> Result<u64, StoreError> {
        self.inner.inbox_head()
    }
    fn read_inbox(&mut self, q: &InboxQuery<'_>, row: &mut dyn FnMut(u64, String) -> bool) -> Result<u64, StoreError> {
        self.inner.read_inbox(q, row)
    }
}

impl RelayStore for Interleave<'_> {
    fn snapshot(&mut self, ids: &[String]) -> Result<Snapshot, StoreError> {
        self.inner.snapshot(ids)
    }
    fn commit_page(&mut self, page: &PageWrite) -> Result<Commit, StoreError> {
        if let Some(f) = self.before_commit.take() {
            f();
        }
        self.inner.commit_page(page)
    }
    fn heads(&self) -> Result<Heads, StoreError> {
        self.inner.heads()
    }
    fn read_pull(&mut self, q: &PullQuery, sink: &mut dyn PullSink) -> Result<(), StoreError> {
        self.inner.read_pull(q, sink)
    }
    fn caller(&self, token_hash: &str) -> Result<Option<Caller>, StoreError> {
        self.inner.caller(token_hash)
    }
    fn add_agent(
        &mut self,
        name: &str,
        role: &str,
        team: Option<&str>,
        notes: bool,
        token_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.inner.add_agent(name, role, team, notes, token_hash, now)
    }
    fn agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        self.inner.agents()
    }
    fn revoke_agent(&mut self, name: &str) -> Result<(), StoreError> {
        self.inner.revoke_agent(name)
    }
    fn set_notes_permission(&mut self, name: &str, allowed: bool) -> Result<(), StoreError> {
        self.inner.set_notes_permission(name, allowed)
    }
    fn register_device(&mut self, actor: &str, agent: &str, now: i64) -> Result<(), StoreError> {
        self.inner.register_device(actor, agent, now)
    }
    fn touch_device(&mut self, actor: &str, offset_ms: i64, now: i64) -> Result<(), StoreError> {
        self.inner.touch_device(actor, offset_ms, now)
    }
    fn sync_floor(
        &mut self,
        actor: &str,
        now: i64,
        device_ms: i64,
    ) -> Result<Option<tickets_relay::store::SyncFloor>, StoreError> {
        self.inner.sync_floor(actor, now, device_ms)
    }
    fn complete_sync(&mut self, actor: &str) -> Result<(), StoreError> {
        self.inner.complete_sync(actor)
    }
    fn devices_seen_since(&self, since: i64) -> Result<u64, StoreError> {
        self.inner.devices_seen_since(since)
    }
    fn epoch(&self) -> Result<String, StoreError> {
        self.inner.epoch()
    }
    fn settings(&self) -> Result<Settings, StoreError> {
        self.inner.settings()
    }
    fn sla_settings(&self) -> Result<SlaSettings, StoreError> {
        self.inner.sla_settings()
    }
    fn set_categories(&mut self, categories: &[String]) -> Result<(), StoreError> {
        self.inner.set_categories(categories)
    }
    fn limits(&self) -> Result<tickets_core::limits::Limits, StoreError> {
        self.inner.limits()
    }
    fn set_limits(&mut self, limits: &tickets_core::limits::Limits) -> Result<(), StoreError> {
        self.inner.set_limits(limits)
    }
    fn set_sla_settings(&mut self, settings: &SlaSettings, now: i64) -> Result<(), StoreError> {
        self.inner.set_sla_settings(settings, now)
    }
    fn ticket_rows(&self, q: &ListQuery, now: i64) -> Result<(Vec<TicketRow>, usize), StoreError> {
        self.inner.ticket_rows(q, now)
    }
    fn ticket_row(&self, id: &str) -> Result<Option<TicketRow>, StoreError> {
        self.inner.ticket_row(id)
    }
    fn ids_with_prefix(&self, prefix: &str, max: usize) -> Result<Vec<String>, StoreError> {
        self.inner.ids_with_prefix(prefix, max)
    }
    fn color_counts(&self, now: i64) -> Result<SlaCounts, StoreError> {
        self.inner.color_counts(now)
    }
    fn next_color_change(&self, now: i64) -> Result<Option<i64>, StoreError> {
        self.inner.next_color_change(now)
    }
    fn export_count(&self, f: &ExportFilter) -> Result<u64, StoreError> {
        self.inner.export_count(f)
    }
    fn export_rows(&self, f: &ExportFilter, after: &str, limit: usize) -> Result<Vec<TicketRow>, StoreError> {
        self.inner.export_rows(f, after, limit)
    }
    fn begin_read(&mut self) -> Result<(), StoreError> {
        self.inner.begin_read()
    }
    fn end_read(&mut self) -> Result<(), StoreError> {
        self.inner.end_read()
    }
}
