//! `writ user`: manage the workspace's staff accounts.

use anyhow::Context;
use clap::Subcommand;

use crate::audit::{Actor, ActorKind};
use crate::settings::Settings;
use crate::staff::{self, Role};

/// `writ user` actions.
#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Add a user. The password is read from standard input (one line), never from the command
    /// line, so that it does not land in shell history or the process list.
    Add {
        /// Sign-in name (lowercase letters, digits, - _ .).
        username: String,
        /// admin, legal_reviewer, legal_approver or auditor.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Name shown in the workspace.
        #[arg(long)]
        name: String,
    },
    /// Disable a user (their sessions end at once), or with --enable re-enable them.
    Disable {
        /// Sign-in name.
        username: String,
        /// Re-enable instead.
        #[arg(long)]
        enable: bool,
    },
    /// List users.
    List,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| {
        format!("`{s}` is not a role: admin, legal_reviewer, legal_approver or auditor")
    })
}

/// Runs a `writ user` action.
pub fn run(settings: Settings, action: UserAction) -> anyhow::Result<()> {
    let db = super::open_db(&settings)?;
    crate::audit::service::install_entry_key(&db, &settings.audit, true)?;
    let mut conn = db.conn()?;
    let actor = Actor::new(ActorKind::System, "cli");
    match action {
        UserAction::Add {
            username,
            role,
            name,
        } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("cannot read the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            staff::add_user(&mut conn, &actor, &username, &name, role, password)?;
            println!("added {username} ({})", role.label());
        }
        UserAction::Disable { username, enable } => {
            staff::set_disabled(&mut conn, &actor, &username, !enable)?;
            println!("{username} {}", if enable { "enabled" } else { "disabled" });
        }
        UserAction::List => {
            for u in staff::list(&mut conn)? {
                println!(
                    "{}\t{}\t{}{}",
                    u.username,
                    u.role.as_str(),
                    u.display_name,
                    if u.disabled { "\t(disabled)" } else { "" }
                );
            }
        }
    }
    Ok(())
}
