//! What the playground page follows: every change the fakes see, numbered, kept (bounded) for a
//! page that connects later, and broadcast to the pages connected now.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::broadcast;

/// How many events a page that connects late is shown.
const HISTORY: usize = 5000;

#[derive(Debug)]
pub struct Feed {
    tx: broadcast::Sender<Arc<Value>>,
    state: Mutex<FeedState>,
}

#[derive(Debug, Default)]
struct FeedState {
    seq: u64,
    history: VecDeque<Arc<Value>>,
}

impl Feed {
    pub fn new() -> Arc<Self> {
        let (tx, _) = broadcast::channel(1024);
        Arc::new(Self { tx, state: Mutex::default() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes `{"seq": n, "kind": kind, "data": data}`.
    pub fn publish(&self, kind: &str, data: Value) -> u64 {
        let mut state = self.lock();
        state.seq += 1;
        let event = Arc::new(json!({"seq": state.seq, "kind": kind, "data": data}));
        if state.history.len() == HISTORY {
            state.history.pop_front();
        }
        state.history.push_back(event.clone());
        // Sent under the lock, so a subscriber sees each event once: in its history or live.
        let _ = self.tx.send(event);
        state.seq
    }

    /// What happened so far, and a receiver for what happens next, with no gap between them.
    pub fn subscribe(&self) -> (Vec<Arc<Value>>, broadcast::Receiver<Arc<Value>>) {
        let state = self.lock();
        (state.history.iter().cloned().collect(), self.tx.subscribe())
    }

    /// Every kept event, oldest first.
    pub fn history(&self) -> Vec<Value> {
        self.lock().history.iter().map(|e| (**e).clone()).collect()
    }

    /// The kept events of one kind, oldest first.
    pub fn of_kind(&self, kind: &str) -> Vec<Value> {
        self.lock().history.iter().filter(|e| e["kind"] == kind).map(|e| e["data"].clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_late_subscriber_gets_history_then_live_events() {
        let feed = Feed::new();
        feed.publish("a", json!(1));
        let (history, mut rx) = feed.subscribe();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0]["kind"], "a");
        feed.publish("b", json!(2));
        let live = rx.recv().await.unwrap();
        assert_eq!(live["seq"], 2);
        assert_eq!(feed.of_kind("b"), vec![json!(2)]);
    }
}
