//! Table definitions shared by both backends (the migrations keep them identical).

diesel::table! {
    /// Facts about the deployment that all instances share, such as `deployment_id`.
    writ_meta (key) {
        /// Name of the fact.
        key -> Text,
        /// Its value.
        value -> Text,
    }
}

diesel::table! {
    /// The audit log's entries; append-only (database triggers refuse UPDATE and DELETE).
    audit_entries (seq) {
        /// Position in the log, from 0, gap-free: the Merkle leaf index.
        seq -> BigInt,
        /// When, RFC 3339 UTC with microseconds (copied from the leaf).
        at -> Text,
        /// Actor kind (copied from the leaf).
        actor_kind -> Text,
        /// Actor id (copied from the leaf).
        actor_id -> Text,
        /// Event type (copied from the leaf).
        event -> Text,
        /// Order concerned, if any (copied from the leaf).
        order_id -> Nullable<Text>,
        /// Jurisdiction concerned, if any (copied from the leaf).
        jurisdiction -> Nullable<Text>,
        /// The canonical leaf bytes (UTF-8 JSON) hashed into the tree.
        leaf -> Text,
        /// Ed25519 signature by the entry key over the leaf hash (see
        /// `src/audit/authenticator.rs`); NULL only for entries appended before it existed.
        authenticator -> Nullable<Binary>,
    }
}

diesel::table! {
    /// Perfect subtree hashes of the audit Merkle tree; append-only.
    audit_nodes (level, idx) {
        /// Height above the leaves (0 = leaf hash).
        level -> Integer,
        /// Index within the level.
        idx -> BigInt,
        /// SHA-256 node hash.
        hash -> Binary,
    }
}

diesel::table! {
    /// Signed checkpoints of the audit log; append-only.
    audit_checkpoints (origin, size) {
        /// Log origin (first line of the checkpoint).
        origin -> Text,
        /// Tree size.
        size -> BigInt,
        /// Root hash at that size.
        root -> Binary,
        /// The signed note, as published.
        note -> Text,
        /// When it was signed, RFC 3339 UTC.
        signed_at -> Text,
    }
}

diesel::table! {
    /// Accounts of the provider's users (metadata only).
    accounts (id) {
        /// Internal id.
        id -> BigInt,
        /// The provider's own user id.
        external_id -> Text,
        /// active, suspended or deleted.
        status -> Text,
        /// Account creation, UTC microseconds.
        created_at -> BigInt,
        /// IP address at registration, canonical form.
        registration_ip -> Nullable<Text>,
    }
}

diesel::table! {
    /// The history of accounts' phone numbers and usernames.
    account_identifiers (id) {
        /// Internal id.
        id -> BigInt,
        /// The account.
        account_id -> BigInt,
        /// phone or username.
        kind -> Text,
        /// E.164 phone number or normalised username.
        value -> Text,
        /// Start of validity, UTC microseconds.
        valid_from -> BigInt,
        /// End of validity (exclusive), UTC microseconds; none while still valid.
        valid_to -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// IP events (logins, session starts, registrations).
    ip_events (account_id, at, ip, port, kind) {
        /// The account.
        account_id -> BigInt,
        /// When, UTC microseconds.
        at -> BigInt,
        /// IP address, canonical form (IPv4-mapped IPv6 as IPv4).
        ip -> Text,
        /// Source port; 0 when not recorded.
        port -> Integer,
        /// Event kind.
        kind -> Text,
    }
}

diesel::table! {
    /// Data that must survive retention.
    holds (id) {
        /// Internal id.
        id -> BigInt,
        /// The account.
        account_id -> BigInt,
        /// Comma-separated categories held.
        categories -> Text,
        /// Start of the held data interval, UTC microseconds.
        data_from -> BigInt,
        /// End of the held data interval (exclusive).
        data_to -> BigInt,
        /// Why (an order reference, a preservation).
        reason -> Text,
        /// The order that placed it, if any.
        order_id -> Nullable<Text>,
        /// When it was placed.
        created_at -> BigInt,
        /// When it lapses.
        expires_at -> BigInt,
    }
}

diesel::joinable!(account_identifiers -> accounts (account_id));
diesel::joinable!(ip_events -> accounts (account_id));
diesel::joinable!(holds -> accounts (account_id));
diesel::allow_tables_to_appear_in_same_query!(accounts, account_identifiers, ip_events, holds);

diesel::table! {
    /// Authorities that may send orders.
    authorities (id) {
        /// Registry id.
        id -> Text,
        /// Name.
        name -> Text,
        /// Country, ISO 3166-1 alpha-2.
        country -> Text,
        /// Registered kind (court, prosecutor, police...).
        kind -> Text,
        /// Comma-separated contact e-mail addresses.
        contacts -> Text,
        /// active or suspended.
        status -> Text,
        /// When registered, UTC microseconds.
        created_at -> BigInt,
    }
}

diesel::table! {
    /// Authorities' public keys.
    authority_keys (kid) {
        /// Key id (the JWT `kid`).
        kid -> Text,
        /// The authority.
        authority_id -> Text,
        /// Pinned algorithm: EdDSA, ES256 or RS256.
        algorithm -> Text,
        /// SubjectPublicKeyInfo PEM.
        public_key_pem -> Text,
        /// When added, UTC microseconds.
        created_at -> BigInt,
        /// When revoked, if it was.
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(authority_keys -> authorities (authority_id));
diesel::allow_tables_to_appear_in_same_query!(authorities, authority_keys);

diesel::table! {
    /// Pinned TLS client identities of authorities (mutual TLS).
    authority_tls_pins (sha256) {
        /// Lowercase hex SHA-256 of the certificate or of its SubjectPublicKeyInfo.
        sha256 -> Text,
        /// `certificate` or `spki`.
        kind -> Text,
        /// The authority the identity stands for.
        authority_id -> Text,
        /// When pinned, UTC microseconds.
        created_at -> BigInt,
        /// When revoked, if it was.
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(authority_tls_pins -> authorities (authority_id));
diesel::allow_tables_to_appear_in_same_query!(authorities, authority_tls_pins);

diesel::table! {
    /// Token ids already used (replay protection shared by all instances).
    used_token_ids (authority_id, jti) {
        /// The authority whose token it was.
        authority_id -> Text,
        /// The token id.
        jti -> Text,
        /// When the token expires (UTC seconds); the row may go after that.
        expires_at -> BigInt,
    }
}

diesel::table! {
    /// Orders received from authorities (the current version's summary).
    orders (id) {
        /// Writ's order id (UUID).
        id -> Text,
        /// The sending authority (from its verified token, never from the body).
        authority_id -> Text,
        /// The authority's own reference.
        reference -> Text,
        /// The instrument id.
        instrument -> Text,
        /// Whether the order claims an emergency.
        emergency -> Bool,
        /// Workflow status.
        status -> Text,
        /// Current version (1 + amendments).
        version -> Integer,
        /// The engine's outcome for the current version.
        outcome -> Text,
        /// The reply deadline, UTC microseconds.
        deadline_at -> Nullable<BigInt>,
        /// When received, UTC microseconds.
        received_at -> BigInt,
        /// Last change, UTC microseconds.
        updated_at -> BigInt,
        /// The staff member who entered it by hand (manual intake).
        entered_by -> Nullable<Text>,
        /// When the legal team was last reminded of the deadline.
        reminded_at -> Nullable<BigInt>,
        /// When the legal team was reminded of a task's clock.
        task_reminded_at -> Nullable<BigInt>,
        /// The ex-post validation of an emergency order: received or lapsed.
        ex_post_validation -> Nullable<Text>,
        /// When the user was notified.
        user_notified_at -> Nullable<BigInt>,
        /// By which channel.
        user_notified_channel -> Nullable<Text>,
        /// When a preservation order's holds end (set at receipt, moved by extensions).
        hold_until -> Nullable<BigInt>,
        /// When an emergency order's ex-post validation is due (from the current decision).
        validation_due_at -> Nullable<BigInt>,
        /// Extensions of the preservation granted so far.
        hold_extensions -> Integer,
        /// The earliest follow-up task of the current decision, UTC microseconds.
        follow_up_due_at -> Nullable<BigInt>,
        /// The colleague the order is assigned to (staff username).
        assigned_to -> Nullable<Text>,
        /// Whether the authority's latest message is still unread by the legal team.
        reply_unread -> Bool,
        /// When the authority last wrote, UTC microseconds.
        replied_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Every version of an order, exactly as submitted, with its decision.
    order_versions (order_id, version) {
        /// The order.
        order_id -> Text,
        /// Version number.
        version -> Integer,
        /// The order JSON as submitted.
        order_json -> Text,
        /// SHA-256 (hex) of `order_json`.
        order_sha256 -> Text,
        /// The validator key whose signature proved the validation.
        validation_kid -> Nullable<Text>,
        /// The validator's signature as submitted.
        validation_token -> Nullable<Text>,
        /// The registry's id of the validating authority the carrier named by its registered
        /// identifier (e-Evidence's `ValidatingAuthority` approval): known, but not proven by
        /// the validator's own signature.
        validator_authority_id -> Nullable<Text>,
        /// The policy decision (JSON).
        decision_json -> Text,
        /// When stored, UTC microseconds.
        created_at -> BigInt,
        /// The narrowed scope (JSON), when people narrowed the decision.
        scope_json -> Nullable<Text>,
        /// Who checked the claimed validation against the signed document.
        validation_checked_by -> Nullable<Text>,
        /// When.
        validation_checked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Signed order documents.
    order_documents (order_id, version) {
        /// The order.
        order_id -> Text,
        /// The version it came with.
        version -> Integer,
        /// Media type (application/pdf).
        media_type -> Text,
        /// SHA-256 (hex) of the content.
        sha256 -> Text,
        /// Size in bytes.
        size -> BigInt,
        /// The document.
        content -> Binary,
    }
}

diesel::table! {
    /// Further papers that came with an order entered by hand (translations, annexes).
    order_attachments (order_id, position) {
        /// The order.
        order_id -> Text,
        /// Its place among the order's attachments, from 1.
        position -> Integer,
        /// What it is, in the words of the person who entered it (e.g. "English translation").
        label -> Text,
        /// The file's name as uploaded (shown, never used as a path).
        file_name -> Text,
        /// SHA-256 (hex) of the content.
        sha256 -> Text,
        /// Size in bytes.
        size -> BigInt,
        /// The file.
        content -> Binary,
        /// Who entered it (staff username).
        added_by -> Text,
        /// When (Unix microseconds).
        created_at -> BigInt,
    }
}

diesel::table! {
    /// Clarification messages.
    order_messages (id) {
        /// Sequence.
        id -> BigInt,
        /// The order.
        order_id -> Text,
        /// `authority` or `provider`.
        sender -> Text,
        /// Authority id or staff member.
        author -> Text,
        /// Text.
        body -> Text,
        /// The version an amendment in this message created.
        amended_version -> Nullable<Integer>,
        /// When, UTC microseconds.
        created_at -> BigInt,
    }
}

diesel::table! {
    /// Idempotency keys per authority.
    idempotency_keys (authority_id, idempotency_key) {
        /// The authority.
        authority_id -> Text,
        /// The client's key.
        idempotency_key -> Text,
        /// SHA-256 (hex) of method, path and body.
        request_sha256 -> Text,
        /// The first answer's status.
        status -> Integer,
        /// The first answer's body.
        response -> Text,
        /// When, UTC microseconds.
        created_at -> BigInt,
    }
}

diesel::table! {
    /// Malformed submissions from authenticated authorities.
    rejected_submissions (id) {
        /// Rejection id (UUID).
        id -> Text,
        /// The authority.
        authority_id -> Text,
        /// When, UTC microseconds.
        received_at -> BigInt,
        /// SHA-256 (hex) of the body.
        body_sha256 -> Text,
        /// Body size in bytes.
        size -> BigInt,
        /// HTTP status answered.
        status -> Integer,
        /// The reasons (JSON array of field errors).
        reasons -> Text,
    }
}

diesel::table! {
    /// Holds by target identifier, resolved to account holds by a background job.
    target_holds (id) {
        /// Sequence.
        id -> BigInt,
        /// The order.
        order_id -> Text,
        /// user_id, username, phone or ip.
        target_kind -> Text,
        /// The normalised identifier.
        target_value -> Text,
        /// The port of an IP target.
        ip_port -> Nullable<Integer>,
        /// Comma-separated categories.
        categories -> Text,
        /// Start of the held data interval, UTC microseconds.
        data_from -> BigInt,
        /// End (exclusive).
        data_to -> BigInt,
        /// When recorded.
        created_at -> BigInt,
        /// When resolved to account holds.
        resolved_at -> Nullable<BigInt>,
        /// When the order closed and the hold ended.
        released_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Fixed-window rate counters shared by all instances.
    rate_counters (scope, window_start) {
        /// What is counted.
        scope -> Text,
        /// Window start, Unix seconds.
        window_start -> BigInt,
        /// Requests in the window.
        count -> BigInt,
    }
}

diesel::table! {
    /// Failed authentications per client network, reason and window.
    auth_failures (window_start, source, reason) {
        /// Window start, Unix seconds.
        window_start -> BigInt,
        /// Client network.
        source -> Text,
        /// Reason class.
        reason -> Text,
        /// Failures in the window.
        count -> BigInt,
    }
}

diesel::joinable!(order_versions -> orders (order_id));
diesel::joinable!(order_documents -> orders (order_id));
diesel::joinable!(order_messages -> orders (order_id));
diesel::joinable!(target_holds -> orders (order_id));
diesel::allow_tables_to_appear_in_same_query!(
    orders,
    order_versions,
    order_documents,
    order_messages,
    target_holds
);

diesel::table! {
    /// Outgoing e-mail, queued in the transaction of the step that caused it (an outbox).
    mail_outbox (id) {
        /// Sequence.
        id -> BigInt,
        /// The notice kind, e.g. `new_order`.
        kind -> Text,
        /// Comma-separated recipient addresses.
        recipients -> Text,
        /// The rendered subject.
        subject -> Text,
        /// The rendered plain-text body (order ids and references only, no user data).
        body -> Text,
        /// The order concerned, if any.
        order_id -> Nullable<Text>,
        /// An emergency: listed and sent first.
        urgent -> Bool,
        /// queued, sending, sent or failed.
        status -> Text,
        /// Send attempts so far.
        attempts -> Integer,
        /// When the next attempt is due (for `sending`: when the sender's lease ends), UTC
        /// microseconds.
        next_attempt_at -> BigInt,
        /// Why the last attempt failed (short; never the body).
        last_error -> Nullable<Text>,
        /// When queued, UTC microseconds.
        created_at -> BigInt,
        /// When sent.
        sent_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Staff users of the workspace.
    staff_users (username) {
        /// Sign-in name.
        username -> Text,
        /// Name shown.
        display_name -> Text,
        /// admin, legal_reviewer, legal_approver or auditor.
        role -> Text,
        /// argon2id PHC string.
        password_hash -> Text,
        /// Whether sign-in is refused.
        disabled -> Bool,
        /// When created, UTC microseconds.
        created_at -> BigInt,
        /// When the password last changed.
        password_changed_at -> BigInt,
        /// Where the user's own notifications are e-mailed (none: in the app only).
        email -> Nullable<Text>,
        /// The IANA time zone the user's pages show dates in.
        time_zone -> Text,
        /// Set when an admin reset the password: the user must choose a new one first.
        must_change_password -> Bool,
    }
}

diesel::table! {
    /// Workspace sessions.
    staff_sessions (token_sha256) {
        /// SHA-256 (hex) of the cookie token.
        token_sha256 -> Text,
        /// The user.
        username -> Text,
        /// The session's CSRF token.
        csrf_token -> Text,
        /// Sign-in time, UTC microseconds.
        created_at -> BigInt,
        /// Last request.
        last_seen_at -> BigInt,
        /// Absolute end.
        expires_at -> BigInt,
    }
}

diesel::table! {
    /// Disclosure package snapshots and releases.
    packages (id) {
        /// Package id (UUID).
        id -> Text,
        /// The order.
        order_id -> Text,
        /// The order version.
        version -> Integer,
        /// SHA-256 of the scope the package was built from.
        scope_sha256 -> Text,
        /// SHA-256 of the frozen snapshot (what approvals are bound to).
        snapshot_sha256 -> Text,
        /// The frozen records (JSON tables).
        snapshot -> Text,
        /// SHA-256 of the signed archive, once released.
        package_sha256 -> Nullable<Text>,
        /// snapshot, released, superseded or deleted.
        status -> Text,
        /// Records per category (JSON).
        record_counts -> Text,
        /// Fields released (comma-separated).
        fields -> Text,
        /// The archive (deleted after the retention period).
        content -> Nullable<Binary>,
        /// When built.
        created_at -> BigInt,
        /// When released.
        released_at -> Nullable<BigInt>,
        /// The audit sequence number of the release entry.
        release_seq -> Nullable<BigInt>,
        /// When the archive was deleted.
        deleted_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Approvals, each bound to one package snapshot.
    approvals (package_id, approver) {
        /// The snapshot approved.
        package_id -> Text,
        /// Who approved.
        approver -> Text,
        /// When.
        approved_at -> BigInt,
    }
}

diesel::table! {
    /// An authority's ETSI TS 103 120 identity and delivery destination.
    authority_etsi (authority_id) {
        /// The authority.
        authority_id -> Text,
        /// HI-1 `CountryCode`.
        country_code -> Text,
        /// HI-1 `UniqueIdentifier`.
        unique_identifier -> Text,
        /// Instrument for disclosure tasks.
        disclosure_instrument -> Text,
        /// Instrument for preservation tasks.
        preservation_instrument -> Nullable<Text>,
        /// HI-1 endpoint Writ DELIVERs to.
        delivery_url -> Nullable<Text>,
        /// When last changed, UTC microseconds.
        updated_at -> BigInt,
    }
}

diesel::table! {
    /// Authenticated HI-1 messages as received.
    etsi_messages (id) {
        /// Message record id (UUID).
        id -> Text,
        /// The sending authority.
        authority_id -> Text,
        /// The header's `TransactionIdentifier`.
        transaction_id -> Text,
        /// When, UTC microseconds.
        received_at -> BigInt,
        /// SHA-256 (hex) of the bytes received.
        body_sha256 -> Text,
        /// Size in bytes.
        size -> BigInt,
        /// The bytes, for answered messages.
        body -> Nullable<Binary>,
        /// answered, read or refused.
        status -> Text,
        /// HTTP status of the answer.
        http_status -> Integer,
        /// The answer (an HI1Message).
        response -> Text,
    }
}

diesel::table! {
    /// HI-1 objects held for a sender.
    etsi_objects (authority_id, object_id) {
        /// The sender.
        authority_id -> Text,
        /// `ObjectIdentifier`.
        object_id -> Text,
        /// Authorisation, LDTask, LPTask, Document or Delivery.
        object_type -> Text,
        /// The message that created it.
        message_id -> Nullable<Text>,
        /// The Writ order a task became.
        order_id -> Nullable<Text>,
        /// A task's authorisation.
        parent_id -> Nullable<Text>,
        /// When, UTC microseconds.
        created_at -> BigInt,
    }
}

diesel::table! {
    /// Outbound DELIVER messages.
    etsi_deliveries (id) {
        /// The DeliveryObject's identifier (UUID).
        id -> Text,
        /// The receiving authority.
        authority_id -> Text,
        /// The released order.
        order_id -> Text,
        /// The LDTask object it answers.
        task_id -> Text,
        /// The destination (none: on request only).
        url -> Nullable<Text>,
        /// queued, sending, acknowledged, failed or on_request.
        status -> Text,
        /// Attempts made.
        attempts -> Integer,
        /// Next attempt (or lease end), UTC microseconds.
        next_attempt_at -> BigInt,
        /// Last error, short.
        last_error -> Nullable<Text>,
        /// When queued.
        created_at -> BigInt,
        /// When acknowledged.
        acknowledged_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(staff_sessions -> staff_users (username));
diesel::joinable!(approvals -> packages (package_id));
diesel::joinable!(packages -> orders (order_id));
diesel::allow_tables_to_appear_in_same_query!(staff_users, staff_sessions, workspace_results);
diesel::allow_tables_to_appear_in_same_query!(packages, approvals, orders);
diesel::allow_tables_to_appear_in_same_query!(etsi_objects, orders, etsi_deliveries);

diesel::table! {
    /// Released orders the deliverers have not picked up yet.
    release_queue (order_id) {
        /// The released order.
        order_id -> Text,
        /// When it was released, UTC microseconds.
        released_at -> BigInt,
    }
}

diesel::table! {
    /// Recorded justifications of decisions that need human judgement (issue 19).
    justifications (id) {
        /// Row id (a UUID).
        id -> Text,
        /// The order.
        order_id -> Text,
        /// approval or validation_check.
        action -> Text,
        /// How a claimed validation was checked (validation_check only).
        method -> Nullable<Text>,
        /// The check flags the justification answers, as reason codes joined by commas.
        points -> Text,
        /// What the person wrote.
        text -> Text,
        /// SHA-256 of `text` (also in the action's audit entry).
        text_sha256 -> Text,
        /// Who wrote it.
        author -> Text,
        /// When, UTC microseconds.
        created_at -> BigInt,
    }
}

diesel::table! {
    /// The e-Evidence lifecycle of each order that came as an EPOC or EPOC-PR task.
    eevidence_orders (order_id) {
        /// The order (one per task).
        order_id -> Text,
        /// The authority (as registered) whose message created it.
        authority_id -> Text,
        /// The HI-1 authorisation object the task rests on.
        authorisation_id -> Nullable<Text>,
        /// The HI-1 task object.
        task_id -> Text,
        /// `epoc` or `epoc_pr`.
        kind -> Text,
        /// The lifecycle state (`orders::eevidence::State`).
        state -> Text,
        /// `EPOCPriority` as received.
        priority -> Nullable<Text>,
        /// The enforcing authority was notified (Art 8).
        notified -> Bool,
        /// An emergency order (8 hours).
        emergency -> Bool,
        /// When Writ received it, UTC microseconds.
        received_at -> BigInt,
        /// When it is due, UTC microseconds.
        due_at -> Nullable<BigInt>,
        /// End of the enforcing authority's window, UTC microseconds.
        ea_until -> Nullable<BigInt>,
        /// The enforcing authority decided on grounds for refusal.
        ea_decided -> Bool,
        /// The clock is suspended since (Form 3 awaiting clarification), UTC microseconds.
        suspended_since -> Nullable<BigInt>,
        /// End of preservation, UTC microseconds (none: open-ended after Form 5).
        preserve_until -> Nullable<BigInt>,
        /// The preservation was extended (Form 6).
        extended -> Bool,
        /// The EPOC-PR this EPOC follows, or the EPOC that followed this EPOC-PR.
        linked_order -> Nullable<Text>,
        /// Why a person must judge the order before anything is released.
        judgement -> Nullable<Text>,
        /// Last change, UTC microseconds.
        updated_at -> BigInt,
        /// The order's language (ISO 639-1) as the EPOC gives it (its approvers' contact
        /// details), for Form 3.
        language -> Nullable<Text>,
    }
}

diesel::table! {
    /// Calls to the national e-Evidence system, sent under a lease until acknowledged.
    eevidence_outbox (id) {
        /// Id (also the HI-1 transaction identifier of every attempt).
        id -> Text,
        /// The order it concerns.
        order_id -> Nullable<Text>,
        /// The authority the order came from.
        authority_id -> Text,
        /// The system's endpoint (`outcome`, `nonexecution`, ...).
        endpoint -> Text,
        /// The message, when built at queueing time (an `outcome` is built when sent).
        body -> Nullable<Text>,
        /// queued, sending, acknowledged or failed.
        status -> Text,
        /// Attempts made.
        attempts -> Integer,
        /// Next attempt (or lease end), UTC microseconds.
        next_attempt_at -> BigInt,
        /// Last error, short.
        last_error -> Nullable<Text>,
        /// When queued.
        created_at -> BigInt,
        /// When acknowledged.
        acknowledged_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// The correspondence of an e-Evidence order, in and out.
    eevidence_correspondence (id) {
        /// Id.
        id -> Text,
        /// The order.
        order_id -> Text,
        /// `in` or `out`.
        direction -> Text,
        /// `EPOCDocumentType` (or Writ's `Form3`, `DataPreserved`, ...).
        document_type -> Text,
        /// The text.
        body -> Text,
        /// When, UTC microseconds.
        created_at -> BigInt,
    }
}

diesel::table! {
    /// Internal notes of the legal team on an order: never sent to the authority.
    order_notes (id) {
        /// Note id (UUID).
        id -> Text,
        /// The order.
        order_id -> Text,
        /// Who wrote it (staff username).
        author -> Text,
        /// The text.
        body -> Text,
        /// When, UTC microseconds.
        created_at -> BigInt,
    }
}

diesel::table! {
    /// Per-user notifications in the workspace (the bell).
    staff_notifications (id) {
        /// Notification id (UUID).
        id -> Text,
        /// Whom it is for.
        username -> Text,
        /// The order concerned.
        order_id -> Nullable<Text>,
        /// assigned, reply_received or deadline_near.
        kind -> Text,
        /// What it says.
        body -> Text,
        /// When, UTC microseconds.
        created_at -> BigInt,
        /// When the user read it.
        read_at -> Nullable<BigInt>,
        /// When it was queued as an e-mail.
        mailed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Queue filters a user saved under a name.
    saved_filters (id) {
        /// Filter id (UUID).
        id -> Text,
        /// Whose.
        username -> Text,
        /// The name the user gave it.
        name -> Text,
        /// The queue's query string.
        query -> Text,
        /// When saved, UTC microseconds.
        created_at -> BigInt,
    }
}

diesel::table! {
    /// Results of audited workspace POSTs (lookups, package previews), kept for the session
    /// that ran them so a reload shows them without running them again.
    workspace_results (session_sha256, order_id, kind) {
        /// SHA-256 of the session token.
        session_sha256 -> Text,
        /// The order.
        order_id -> Text,
        /// matches or preview.
        kind -> Text,
        /// The result (JSON).
        payload -> Text,
        /// When, UTC microseconds.
        created_at -> BigInt,
    }
}

diesel::joinable!(order_notes -> orders (order_id));
diesel::allow_tables_to_appear_in_same_query!(
    order_notes,
    orders,
    staff_users,
    staff_notifications
);

diesel::table! {
    /// Signed webhooks waiting to be sent, and sent (issue 19): user notices to the provider's
    /// messaging system and pages to the on-call.
    webhook_outbox (id) {
        /// Sequence.
        id -> BigInt,
        /// `user_notice` or `page`.
        kind -> Text,
        /// The order concerned.
        order_id -> Text,
        /// The JSON body, exactly as signed and sent.
        body -> Text,
        /// queued, sending, sent or failed.
        status -> Text,
        /// Send attempts so far.
        attempts -> Integer,
        /// When the next attempt is due (for `sending`: when the sender's lease ends), UTC
        /// microseconds; a user notice is not due before the law allows it.
        next_attempt_at -> BigInt,
        /// Why the last attempt failed (short; never the body).
        last_error -> Nullable<Text>,
        /// When queued, UTC microseconds.
        created_at -> BigInt,
        /// When the receiver accepted it.
        sent_at -> Nullable<BigInt>,
        /// When a colleague acknowledged the page in the workspace.
        acknowledged_at -> Nullable<BigInt>,
        /// Who acknowledged it.
        acknowledged_by -> Nullable<Text>,
    }
}
