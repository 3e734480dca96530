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
