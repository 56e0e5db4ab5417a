//! `/incidents` and `/mutes`: what is open and what is muted, ephemeral, with links and buttons.

use super::*;

impl IncidentDesk {
    /// Open incidents, most recently changed first.
    pub async fn open_incidents(&self) -> StoreResult<Vec<Incident>> {
        Ok(self.repo.list_incidents(valine_store::MAX_LIST).await?.into_iter().filter(|i| i.open).collect())
    }

    /// `/incidents`: the open incidents with links and state, ephemeral.
    pub async fn list_open(&self) -> StoreResult<Message> {
        let now = now_secs();
        let open = self.open_incidents().await?;
        if open.is_empty() {
            return Ok(Message::text("No open incidents. ✅").ephemeral());
        }
        let lines: Vec<String> = open
            .iter()
            .map(|i| {
                let mut state = vec![format!(
                    "{} failure(s) since {}",
                    i.failures,
                    valine_domain::clock::relative(i.opened_at, now)
                )];
                if i.flapping {
                    state.push("flapping".into());
                }
                if let Some(a) = i.acked {
                    state.push(format!("acknowledged by <@{}>", a.user_id));
                }
                if i.muted(now) {
                    state.push("muted".into());
                }
                let name = format!("{} on {} ({})", text(&i.key.name()), text(i.key.scope()), text(&i.key.repository));
                let name = match i.message {
                    Some(m) => format!("[{name}]({})", m.link()),
                    None => name,
                };
                format!("• {name}: {}", state.join(", "))
            })
            .collect();
        Ok(Message::text(format!("**Open incidents ({})**\n{}", open.len(), lines.join("\n"))).ephemeral())
    }

    /// `/mutes`: the active mutes, each with an Unmute button, ephemeral.
    pub async fn list_mutes(&self) -> StoreResult<Message> {
        let now = now_secs();
        let muted: Vec<Incident> = self
            .repo
            .list_incidents(valine_store::MAX_LIST)
            .await?
            .into_iter()
            .filter(|i| i.open && i.muted(now))
            .collect();
        if muted.is_empty() {
            return Ok(Message::text("No active mutes.").ephemeral());
        }
        let lines: Vec<String> = muted
            .iter()
            .filter_map(|i| {
                let m = i.mute?;
                let until = m.until.map_or_else(|| "until fixed".to_string(), |u| format!("until <t:{u}:f>"));
                Some(format!(
                    "• {} on {} ({}): muted by <@{}> {until}",
                    text(&i.key.name()),
                    text(i.key.scope()),
                    text(&i.key.repository),
                    m.by
                ))
            })
            .collect();
        let mut message =
            Message::text(format!("**Active mutes ({})**\n{}", muted.len(), lines.join("\n"))).ephemeral();
        let buttons: Vec<Component> = muted
            .iter()
            .take(valine_domain::message::MAX_ROWS * valine_domain::message::MAX_PER_ROW)
            .map(|i| {
                let label = format!("Unmute {} on {}", i.key.name(), i.key.scope());
                Component::button(label, ButtonStyle::Secondary, CustomId::IncidentUnmute(i.streak_id()).to_string())
            })
            .collect();
        for row in buttons.chunks(valine_domain::message::MAX_PER_ROW) {
            message = message.with_row(row.to_vec());
        }
        Ok(message)
    }

    /// `/flaky`: the jobs and signatures that failed and then passed on a re-run of the same run
    /// in the last `days` days (of `repository`, when given), flakiest first, ephemeral.
    pub async fn list_flaky(&self, repository: Option<&str>, days: u64) -> StoreResult<Message> {
        let now = now_secs();
        let flakes = self.signatures.flakes().await?;
        let rows = valine_domain::fingerprint::flakiest(&flakes, repository, days, now);
        let scope = repository.map(|r| format!(" in {}", text(r))).unwrap_or_default();
        if rows.is_empty() {
            return Ok(Message::text(format!("No flakes{scope} in the last {days} days.")).ephemeral());
        }
        let lines: Vec<String> = rows
            .iter()
            .take(20)
            .map(|r| {
                let job = r.job.as_deref().map(|j| format!(" › {}", text(j))).unwrap_or_default();
                let signature = r.signature.as_deref().map(|s| format!(" `{s}`")).unwrap_or_default();
                format!(
                    "• {}{job}{signature} ({}): {}× (last {}, #{})",
                    text(&r.workflow),
                    text(&r.repository),
                    r.count,
                    valine_domain::clock::relative(r.last_at, now),
                    r.last_run_number
                )
            })
            .collect();
        let more = if rows.len() > 20 { format!("\n… and {} more", rows.len() - 20) } else { String::new() };
        let title = format!("**Flakiest jobs{scope}, last {days} days**");
        Ok(Message::text(format!("{title}\n{}{more}", lines.join("\n"))).ephemeral())
    }
}
