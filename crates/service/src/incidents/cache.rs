//! What one container knows of each incident: the version it last wrote or read, or that none
//! is stored. An ordering key only grows, so a cached "older or equal" is final; the write's
//! version check catches anything else. Bounded: past [`CACHE_SIZE`] entries it starts over.

use std::collections::HashMap;
use std::sync::Mutex;

use valine_domain::incident::Incident;

/// Incidents kept in a container's memory.
pub(super) const CACHE_SIZE: usize = 512;

/// Incidents by id; `None`: known to have none stored.
#[derive(Debug, Default)]
pub(crate) struct IncidentCache {
    map: Mutex<HashMap<String, Option<Incident>>>,
}

impl IncidentCache {
    pub(super) fn get(&self, id: &str) -> Option<Option<Incident>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    pub(super) fn remember(&self, incident: &Incident) {
        let mut cache = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_SIZE && !cache.contains_key(&incident.id) {
            cache.clear();
        }
        // Never replace a newer version with an older one (two tasks of one container).
        if cache.get(&incident.id).is_none_or(|c| c.as_ref().is_none_or(|c| c.version <= incident.version)) {
            cache.insert(incident.id.clone(), Some(incident.clone()));
        }
    }

    pub(super) fn forget(&self, id: &str) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Which of `ids` a delivery reads with its record (which costs no call of its own): those
    /// this container holds no incident for. "None stored" is not trusted from an earlier read:
    /// another container may have opened it since, and acting on "none" would post a message
    /// only to delete it when the write finds the incident.
    pub(super) fn unknown(&self, ids: &[String]) -> Vec<String> {
        let cache = self.map.lock().unwrap_or_else(|p| p.into_inner());
        ids.iter().filter(|id| !matches!(cache.get(*id), Some(Some(_)))).cloned().collect()
    }

    /// What a delivery's read found for `asked`: the incidents in `found`, none for the rest.
    /// "None" is as safe to act on as a stale version: the write's condition catches both.
    pub(super) fn prime(&self, asked: &[String], found: &[Incident]) {
        for incident in found {
            self.remember(incident);
        }
        let mut cache = self.map.lock().unwrap_or_else(|p| p.into_inner());
        for id in asked {
            // This delivery's read: fresh now, read again by the next delivery, and never over
            // an incident another task of this container wrote meanwhile.
            if !found.iter().any(|i| &i.id == id) && cache.len() < CACHE_SIZE && !matches!(cache.get(id), Some(Some(_)))
            {
                cache.insert(id.clone(), None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use valine_domain::incident::{IncidentKey, Observation, Order, Outcome, Policy, RunRef, decide};

    /// The incident a failure of run `number` opens (version 1) in `channel`.
    fn incident(channel: u64, number: u64) -> Incident {
        let obs = Observation {
            workflow_file: Default::default(),
            key: IncidentKey::workflow(channel, "acme/web", "CI", "main"),
            outcome: Outcome::Failure,
            run: RunRef { run_id: number, order: Order::new(number, 1), ..RunRef::default() },
        };
        decide(None, &obs, 1_000, Policy::default()).next.unwrap()
    }

    #[test]
    fn the_newest_version_stays_and_none_stored_is_asked_again() {
        let cache = IncidentCache::default();
        let mut a = incident(1, 1);
        cache.remember(&a);
        let mut older = a.clone();
        older.version = 0;
        cache.remember(&older);
        assert_eq!(cache.get(&a.id), Some(Some(a.clone())), "an older version never replaces a newer one");
        a.version += 1;
        cache.remember(&a);
        assert_eq!(cache.get(&a.id).flatten().map(|i| i.version), Some(a.version));
        let b = incident(2, 1);
        // A delivery asked for both and found only `a`: `b` is "none stored" for now...
        cache.prime(&[a.id.clone(), b.id.clone()], std::slice::from_ref(&a));
        assert_eq!(cache.get(&b.id), Some(None));
        // ...and read again by the next delivery (another container may have opened it).
        assert_eq!(cache.unknown(&[a.id.clone(), b.id.clone()]), vec![b.id.clone()]);
        cache.forget(&a.id);
        assert_eq!(cache.get(&a.id), None);
    }

    #[test]
    fn it_stays_within_its_size() {
        let cache = IncidentCache::default();
        for channel in 0..(CACHE_SIZE as u64 + 10) {
            cache.remember(&incident(channel + 1, 1));
        }
        assert!(cache.map.lock().unwrap().len() <= CACHE_SIZE);
    }
}
