//! The catalogue of audit events: every event name Writ writes, in one place.
//!
//! Callers name an event as `Event::OrderReceived`, never as a string; the names below are the
//! exact strings in the log (the `event` field of every leaf), so renaming a variant changes
//! nothing on the wire, and changing a name is a visible edit here.

use std::fmt;

macro_rules! catalogue {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)*) => {
        /// An audit event, as written in the `event` field of an entry.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Event {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Event {
            /// Every event, in catalogue order.
            pub const ALL: &'static [Event] = &[$(Event::$variant,)*];

            /// The event's name in the log.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Event::$variant => $name,)*
                }
            }
        }
    };
}

catalogue! {
    /// Failed authentications of a closed time window, summarised.
    ApiAuthFailures => "api.auth_failures",
    /// Entries lost with a restore were replayed from a later export (their range and the
    /// export's checkpoint in the refs).
    AuditEntriesReplayed => "audit.entries_replayed",
    /// An operator acknowledged that entries signed before a restore are lost for good: the
    /// lost range, the outside checkpoint that covered it and the reason are in the refs.
    AuditLossAcknowledged => "audit.loss_acknowledged",
    /// The checkpoint key was replaced: the old and new public keys, and the checkpoint sizes
    /// where one stops and the other starts, are in the refs (see [`super::rotation`]).
    AuditCheckpointKeyRotated => "audit.checkpoint_key_rotated",
    /// An authority was registered.
    AuthorityAdded => "authority.added",
    /// An authority was set active again.
    AuthorityActivated => "authority.activated",
    /// An authority was suspended.
    AuthoritySuspended => "authority.suspended",
    /// A key was pinned to an authority.
    AuthorityKeyAdded => "authority.key_added",
    /// An authority's key was revoked.
    AuthorityKeyRevoked => "authority.key_revoked",
    /// A TLS client identity (certificate or key pin) was pinned to an authority.
    AuthorityTlsPinAdded => "authority.tls_pin_added",
    /// An authority's TLS client pin was revoked.
    AuthorityTlsPinRevoked => "authority.tls_pin_revoked",
    /// An authority's HI-1 identity was set.
    AuthorityEtsiSet => "authority.etsi_set",
    /// An EPOC or EPOC-PR task became an order with its e-Evidence lifecycle.
    EevidenceReceived => "eevidence.received",
    /// An e-Evidence order's lifecycle moved (trigger, from, to).
    EevidenceTransition => "eevidence.transition",
    /// A person confirmed the authorities an e-Evidence order names.
    EevidenceAuthoritiesConfirmed => "eevidence.authorities_confirmed",
    /// A call to the national e-Evidence system was queued.
    EevidenceCallQueued => "eevidence.call_queued",
    /// An attempt at a call to the national e-Evidence system failed (it is retried).
    EevidenceCallAttempted => "eevidence.call_attempted",
    /// The national e-Evidence system acknowledged a call.
    EevidenceCallAcknowledged => "eevidence.call_acknowledged",
    /// A call to the national e-Evidence system failed for good.
    EevidenceCallFailed => "eevidence.call_failed",
    /// A correspondence document was received or sent.
    EevidenceCorrespondence => "eevidence.correspondence",
    /// The national system's authority list was read into the registry's view.
    EevidenceAuthoritiesRefreshed => "eevidence.authorities_refreshed",
    /// The national system fetched a released package Writ sent by reference (an `outcome`
    /// above the inline limit), at `GET /eevidence/packages/{id}`.
    EevidencePackageFetched => "eevidence.package_fetched",
    /// A fetch of a package by reference was refused (not the authority it was delivered to,
    /// or not, or no longer, delivered).
    EevidencePackageRefused => "eevidence.package_refused",
    /// An HI-1 delivery was queued for a released order.
    EtsiDeliveryQueued => "etsi.delivery_queued",
    /// The destination acknowledged an HI-1 delivery.
    EtsiDeliveryAcknowledged => "etsi.delivery_acknowledged",
    /// An HI-1 delivery failed for good.
    EtsiDeliveryFailed => "etsi.delivery_failed",
    /// An HI-1 message was answered.
    EtsiMessageAnswered => "etsi.message_answered",
    /// An HI-1 message was refused as a whole.
    EtsiMessageRefused => "etsi.message_refused",
    /// Kept HI-1 message bodies past their retention period were deleted.
    EtsiMessageBodiesPurged => "etsi.message_bodies_purged",
    /// A failed mail was queued again by a person.
    MailRetried => "mail.retried",
    /// The demo data was seeded.
    MetadataDemoSeeded => "metadata.demo_seeded",
    /// A batch of an import was stored.
    MetadataImportBatch => "metadata.import_batch",
    /// An import finished.
    MetadataImportCompleted => "metadata.import_completed",
    /// The metadata store was searched.
    MetadataLookup => "metadata.lookup",
    /// A retention run deleted expired metadata.
    MetadataRetentionRun => "metadata.retention_run",
    /// An order was received and decided.
    OrderReceived => "order.received",
    /// A submission was rejected before it became an order.
    OrderSubmissionRejected => "order.submission_rejected",
    /// The authority amended an order.
    OrderAmended => "order.amended",
    /// The authority withdrew an order.
    OrderWithdrawn => "order.withdrawn",
    /// The provider asked the authority to clarify an order.
    OrderClarificationRequested => "order.clarification_requested",
    /// The legal team objected to an order (e-Evidence Art 10(5) or Art 17), with its grounds.
    OrderObjected => "order.objected",
    /// The authority sent a message about an order.
    OrderMessageReceived => "order.message_received",
    /// A staff member viewed an order's signed document.
    OrderDocumentViewed => "order.document_viewed",
    /// Further papers (translations, annexes) were stored with an order entered by hand.
    OrderAttachmentsStored => "order.attachments_stored",
    /// The claimed validation was checked against the signed document.
    OrderValidationChecked => "order.validation_checked",
    /// The outcome of an emergency order's ex-post validation was recorded.
    OrderExPostValidation => "order.ex_post_validation",
    /// The user was notified of an order.
    OrderUserNotified => "order.user_notified",
    /// The provider refused an order.
    OrderRefused => "order.refused",
    /// The authority was answered that the provider holds no data the order reaches (an
    /// explicit reply, or a released package with no records).
    OrderAnsweredNotHeld => "order.answered_not_held",
    /// A person narrowed an order's scope.
    OrderNarrowed => "order.narrowed",
    /// An order's package was gathered and frozen as a snapshot.
    OrderPackagePrepared => "order.package_prepared",
    /// An existing snapshot was shown again.
    OrderPackagePreviewed => "order.package_previewed",
    /// An approver approved a snapshot.
    OrderApproved => "order.approved",
    /// The second approval released the package.
    OrderReleased => "order.released",
    /// The authority downloaded a released package.
    OrderPackageDownloaded => "order.package_downloaded",
    /// A records certificate of a released package was issued (its hash, the manifest's hash
    /// and the signing key's id in the refs).
    OrderCertificateIssued => "order.certificate_issued",
    /// The user notice was accepted by the provider's messaging system (signed webhook; the
    /// outbox row, the attempts and the body's hash in the refs).
    OrderUserNoticeSent => "order.user_notice_sent",
    /// The on-call was paged about an emergency order (signed webhook accepted).
    OrderOnCallPaged => "order.on_call_paged",
    /// A colleague acknowledged the on-call page of an emergency order.
    OrderPageAcknowledged => "order.page_acknowledged",
    /// A released package's archive was deleted.
    OrderPackageDeleted => "order.package_deleted",
    /// A hold by identifier was resolved to accounts.
    OrderHoldResolved => "order.hold_resolved",
    /// A hold was released.
    OrderHoldReleased => "order.hold_released",
    /// A hold was extended.
    OrderHoldExtended => "order.hold_extended",
    /// A hold ran out.
    OrderHoldExpired => "order.hold_expired",
    /// The disclosure-package signing key was replaced; the old and new key ids are in the
    /// refs, and the old public key stays published among the retired ones.
    PackageKeyRotated => "package.key_rotated",
    /// The order was assigned to a colleague (or unassigned).
    OrderAssigned => "order.assigned",
    /// A colleague added an internal note (never sent out; the entry holds its hash).
    OrderNoteAdded => "order.note_added",
    /// The queue was searched by a target identifier (the entry holds its hash).
    OrdersSearchedByTarget => "orders.searched_by_target",
    /// The policy set that decides orders changed.
    PolicyLoaded => "policy.loaded",
    /// A staff member signed in.
    StaffLogin => "staff.login",
    /// A sign-in failed.
    StaffLoginFailed => "staff.login_failed",
    /// An admin lifted a user's sign-in lockout.
    StaffLockoutLifted => "staff.lockout_lifted",
    /// A staff member changed their password.
    StaffPasswordChanged => "staff.password_changed",
    /// An admin reset a user's password to a temporary one (the user must choose a new one at
    /// the next sign-in; their sessions ended).
    StaffPasswordReset => "staff.password_reset",
    /// An admin changed a user's role (old and new in the refs).
    StaffRoleChanged => "staff.role_changed",
    /// A workspace user was added.
    StaffUserAdded => "staff.user_added",
    /// A workspace user was disabled.
    StaffUserDisabled => "staff.user_disabled",
    /// A workspace user was enabled again.
    StaffUserEnabled => "staff.user_enabled",
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Event> for String {
    fn from(e: Event) -> Self {
        e.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Actor, NewEntry};

    #[test]
    fn every_name_is_unique_and_a_valid_event() {
        let mut seen = std::collections::BTreeSet::new();
        for e in Event::ALL {
            assert!(seen.insert(e.as_str()), "{e} twice");
            let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
            let leaf = NewEntry::new(Actor::system(), *e).to_leaf(0, at);
            assert!(leaf.is_ok(), "{e}: {leaf:?}");
        }
        assert_eq!(Event::OrderReceived.to_string(), "order.received");
    }
}
