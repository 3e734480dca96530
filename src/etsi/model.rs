//! The parts of an ETSI TS 103 120 `HI1Message` that Writ reads and writes, as typed values.
//!
//! The parser ([`super::parse`]) fills these from XML and refuses any element it does not know
//! in the parts Writ acts on (naming the element's path); elements the standard defines but Writ
//! does not use are accepted and only kept in the raw message. The writer ([`super::write`])
//! turns them back into XML that validates against ETSI's schemas.

use chrono::{DateTime, FixedOffset};

/// The core namespace of `HI1Message` (header, payload, actions, the object base type).
pub const NS_CORE: &str = "http://uri.etsi.org/03120/common/2019/10/Core";
/// Common types: dictionary entries, approval details, time spans.
pub const NS_COMMON: &str = "http://uri.etsi.org/03120/common/2016/02/Common";
/// Task objects: `LDTaskObject`, `LPTaskObject`.
pub const NS_TASK: &str = "http://uri.etsi.org/03120/common/2020/09/Task";
/// `AuthorisationObject`.
pub const NS_AUTH: &str = "http://uri.etsi.org/03120/common/2020/09/Authorisation";
/// `DocumentObject`.
pub const NS_DOC: &str = "http://uri.etsi.org/03120/common/2020/09/Document";
/// `NotificationObject` (the V1.12.1 schema; the current set has none).
pub const NS_NOTIFICATION: &str = "http://uri.etsi.org/03120/common/2016/02/Notification";
/// `DeliveryObject`.
pub const NS_DELIVERY: &str = "http://uri.etsi.org/03120/common/2019/10/Delivery";
/// `GETCSPCONFIG` response types.
pub const NS_CONFIG: &str = "http://uri.etsi.org/03120/common/2024/06/Config";
/// TS 103 280 dictionaries (in `GETCSPCONFIGResponse`).
pub const NS_DICTIONARIES: &str = "http://uri.etsi.org/03280/common/2019/10/Dictionaries";
/// XML Schema instance (`xsi:type`).
pub const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// A party to the exchange: `CountryCode` (ISO 3166-1 alpha-2, or `XX` in ETSI's examples)
/// and `UniqueIdentifier`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointId {
    /// `CountryCode`.
    pub country: String,
    /// `UniqueIdentifier`.
    pub id: String,
}

/// `Version` in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// `ETSIVersion`, e.g. `V1.13.1`.
    pub etsi_version: String,
    /// `NationalProfileOwner`.
    pub national_profile_owner: String,
    /// `NationalProfileVersion`.
    pub national_profile_version: String,
}

/// The message header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `SenderIdentifier`.
    pub sender: EndpointId,
    /// `ReceiverIdentifier`.
    pub receiver: EndpointId,
    /// `TransactionIdentifier` (a UUID, as written).
    pub transaction_id: String,
    /// `Timestamp`, with the offset as given.
    pub timestamp: DateTime<FixedOffset>,
    /// `Version`.
    pub version: Version,
    /// `WorkflowIdentifier`, if given.
    pub workflow_identifier: Option<String>,
}

/// A TS 103 120 dictionary entry: `Owner`, `Name`, `Value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DictionaryEntry {
    /// `Owner` (`ETSI`, or a party's unique identifier for its own dictionaries).
    pub owner: String,
    /// `Name` of the dictionary.
    pub name: String,
    /// `Value`.
    pub value: String,
}

impl DictionaryEntry {
    /// An entry of one of ETSI's own dictionaries.
    pub fn etsi(name: &str, value: &str) -> Self {
        Self {
            owner: "ETSI".into(),
            name: name.into(),
            value: value.into(),
        }
    }
}

/// The fields every HI-1 object has (the `HI1Object` base type).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectBase {
    /// `ObjectIdentifier` (a UUID, as written).
    pub identifier: String,
    /// `CountryCode`.
    pub country: Option<String>,
    /// `OwnerIdentifier`.
    pub owner: Option<String>,
    /// `Generation`.
    pub generation: Option<u64>,
    /// `ExternalIdentifier`.
    pub external_identifier: Option<String>,
    /// `AssociatedObjects/AssociatedObject`.
    pub associated: Vec<String>,
    /// `LastChanged`.
    pub last_changed: Option<DateTime<FixedOffset>>,
}

/// A start and an end time (`Timespan`-like elements).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timespan {
    /// `StartTime`.
    pub start: Option<DateTime<FixedOffset>>,
    /// `EndTime`.
    pub end: Option<DateTime<FixedOffset>>,
}

/// One `ApprovalDetails`: who approved (authorised) the object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Approval {
    /// `ApprovalType` (free text: the schema types it `LongString`, not a dictionary entry).
    pub approval_type: Option<String>,
    /// `ApprovalDescription`.
    pub description: Option<String>,
    /// `ApprovalReference`.
    pub reference: Option<String>,
    /// `ApproverDetails/ApproverName`.
    pub approver_name: Option<String>,
    /// `ApproverDetails/ApproverRole`.
    pub approver_role: Option<String>,
    /// `ApprovalTimestamp`.
    pub timestamp: Option<DateTime<FixedOffset>>,
    /// `ApprovalIsEmergency`.
    pub is_emergency: Option<bool>,
    /// `ApproverDetails/ApproverContactDetails/Languages`: the approver's languages (ISO 639-1,
    /// two lower-case letters), in the order given.
    pub languages: Vec<String>,
}

/// `AuthorisationObject`: the legal authorisation the tasks rest on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Authorisation {
    /// The object base.
    pub base: ObjectBase,
    /// `AuthorisationReference`.
    pub reference: Option<String>,
    /// `AuthorisationLegalType`; Writ reads its own dictionary `WritInstrument` here.
    pub legal_type: Option<DictionaryEntry>,
    /// `AuthorisationPriority`.
    pub priority: Option<DictionaryEntry>,
    /// `AuthorisationStatus` (set by Writ in answers).
    pub status: Option<DictionaryEntry>,
    /// `AuthorisationDesiredStatus`.
    pub desired_status: Option<DictionaryEntry>,
    /// `AuthorisationTimespan`.
    pub timespan: Option<Timespan>,
    /// `AuthorisationCreationTimestamp`.
    pub creation_timestamp: Option<DateTime<FixedOffset>>,
    /// `AuthorisationApprovalDetails`.
    pub approvals: Vec<Approval>,
    /// `AuthorisationFlags/AuthorisationFlag`.
    pub flags: Vec<DictionaryEntry>,
    /// `AuthorisationManualInformation`.
    pub manual_information: Option<String>,
    /// `AuthorisationJurisdiction`.
    pub jurisdiction: Option<String>,
    /// `AuthorisationTypeOfCase`.
    pub type_of_case: Option<DictionaryEntry>,
}

/// One `RequestValue`: a target identifier in a stated format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestValue {
    /// `FormatType/FormatOwner` (`ETSI`, or the receiver's identifier for its own formats).
    pub format_owner: String,
    /// `FormatType/FormatName`.
    pub format_name: String,
    /// `Value`.
    pub value: String,
}

/// `RequestDetails` of a task (disclosure or preservation).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestDetails {
    /// `Type` (dictionary `RequestType`).
    pub request_type: Option<DictionaryEntry>,
    /// `StartTime`.
    pub start: Option<DateTime<FixedOffset>>,
    /// `EndTime`.
    pub end: Option<DateTime<FixedOffset>>,
    /// `ObservedTime` and every `ObservedTimes`, in document order.
    pub observed_times: Vec<DateTime<FixedOffset>>,
    /// `RequestValues/RequestValue`.
    pub values: Vec<RequestValue>,
    /// `Subtype/RequestSubtype`.
    pub subtypes: Vec<DictionaryEntry>,
}

/// One `LDDeadline`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    /// `DateTime`.
    pub at: DateTime<FixedOffset>,
    /// `NatureOfDeadline`.
    pub nature: Option<DictionaryEntry>,
    /// `OtherInformation`.
    pub other: Option<String>,
}

/// `LDTaskObject`: a disclosure task.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LdTask {
    /// The object base.
    pub base: ObjectBase,
    /// `Reference` (the LDID).
    pub reference: Option<String>,
    /// `Status` (dictionary `LDTaskStatus`; set by Writ in answers).
    pub status: Option<DictionaryEntry>,
    /// `StatusReason` (set by Writ in answers).
    pub status_reason: Option<ErrorInfo>,
    /// `DesiredStatus`.
    pub desired_status: Option<DictionaryEntry>,
    /// `RequestDetails`.
    pub request: Option<RequestDetails>,
    /// `DeliveryDetails` was present (its content is kept in the raw message only; the writer
    /// does not write it back).
    pub has_delivery_details: bool,
    /// `ApprovalDetails`.
    pub approvals: Vec<Approval>,
    /// `CSPID`.
    pub csp_id: Option<EndpointId>,
    /// `Flags/LDTaskFlag`.
    pub flags: Vec<DictionaryEntry>,
    /// `Deadlines/LDDeadline`.
    pub deadlines: Vec<Deadline>,
    /// `ManualInformation`.
    pub manual_information: Option<String>,
}

/// `LPTaskObject`: a preservation task.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LpTask {
    /// The object base.
    pub base: ObjectBase,
    /// `Status` (dictionary `LPTaskStatus`; set by Writ in answers).
    pub status: Option<DictionaryEntry>,
    /// `StatusReason` (set by Writ in answers).
    pub status_reason: Option<ErrorInfo>,
    /// `DesiredStatus`.
    pub desired_status: Option<DictionaryEntry>,
    /// `RequestDetails`.
    pub request: Option<RequestDetails>,
    /// `DesiredPreservationExpiration`.
    pub desired_expiration: Option<DateTime<FixedOffset>>,
    /// `PreservationExpiration` (set by Writ in answers).
    pub expiration: Option<DateTime<FixedOffset>>,
    /// `CSPID`.
    pub csp_id: Option<EndpointId>,
}

/// `DocumentObject`: e.g. the signed warrant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    /// The object base.
    pub base: ObjectBase,
    /// `DocumentReference`.
    pub reference: Option<String>,
    /// `DocumentName`.
    pub name: Option<String>,
    /// `DocumentType`.
    pub document_type: Option<DictionaryEntry>,
    /// `DocumentBody`: decoded `Contents`, `ContentType`, `Checksum`, `ChecksumType`.
    pub body: Option<DocumentBody>,
}

/// `DocumentBody`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentBody {
    /// `Contents`, base64-decoded.
    pub contents: Vec<u8>,
    /// `ContentType`.
    pub content_type: Option<String>,
    /// `Checksum`.
    pub checksum: Option<String>,
    /// `ChecksumType` (a `ShortString` in the schema, e.g. `SHA-256`).
    pub checksum_type: Option<String>,
}

/// `DeliveryObject`: data delivered for a task (Writ sends these; it never acts on received ones
/// beyond answering that it does not accept them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delivery {
    /// The object base (`AssociatedObjects` names the task).
    pub base: ObjectBase,
    /// `Reference/LDID`.
    pub ldid: Option<String>,
    /// `DeliveryID`.
    pub delivery_id: Option<String>,
    /// `SequenceNumber`.
    pub sequence_number: Option<u64>,
    /// `LastSequence`.
    pub last_sequence: Option<bool>,
    /// `Manifest/Specification`.
    pub manifest_specification: Option<DictionaryEntry>,
    /// `Delivery/BinaryData`.
    pub binary: Option<BinaryData>,
    /// `Delivery/URL`: where the data can be fetched, instead of `binary`.
    pub url: Option<UrlData>,
    /// `DeliveryStatus`.
    pub status: Option<DictionaryEntry>,
}

/// `URLObject`: data delivered by reference.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UrlData {
    /// `URL`.
    pub url: String,
    /// `ContentLength`.
    pub content_length: Option<u64>,
    /// `ContentType`.
    pub content_type: Option<String>,
    /// `Expiry`: after this the URL no longer gives the data.
    pub expiry: Option<DateTime<FixedOffset>>,
    /// `Checksum` (hex).
    pub checksum: Option<String>,
    /// `OriginalFilename`.
    pub original_filename: Option<String>,
    /// `ChecksumType` (e.g. `SHA-256`).
    pub checksum_type: Option<String>,
}

/// `EmbeddedBinaryData`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryData {
    /// `Data`, base64-decoded.
    pub data: Vec<u8>,
    /// `ContentType`.
    pub content_type: Option<String>,
    /// `Checksum` (hex).
    pub checksum: Option<String>,
    /// `ChecksumType` (`common:ChecksumType`, a `ShortString` in the schema, e.g. `SHA-256`).
    pub checksum_type: Option<String>,
    /// `OriginalFilename`.
    pub original_filename: Option<String>,
    /// `ContentLength`.
    pub content_length: Option<u64>,
}

/// `NotificationObject`: Writ tells the other side something (e-Evidence `NonExecution`,
/// `DataPreserved`, `ConfirmationOfWithdrawal`). Writ writes these; the parser reads them as
/// [`Object::Unsupported`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Notification {
    /// The object base (`AssociatedObjects` names the authorisation and tasks).
    pub base: ObjectBase,
    /// `NotificationDetails`.
    pub details: Option<String>,
    /// `NotificationType`.
    pub notification_type: Option<DictionaryEntry>,
    /// `NewNotification`.
    pub new_notification: Option<bool>,
    /// `NotificationTimestamp`.
    pub timestamp: Option<DateTime<FixedOffset>>,
}

/// An HI-1 object, by its `xsi:type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    /// `auth:AuthorisationObject`.
    Authorisation(Authorisation),
    /// `task:LDTaskObject`.
    LdTask(LdTask),
    /// `task:LPTaskObject`.
    LpTask(LpTask),
    /// `doc:DocumentObject`.
    Document(Document),
    /// `delivery:DeliveryObject`.
    Delivery(Delivery),
    /// `notification:NotificationObject` (written only).
    Notification(Notification),
    /// Any other object type (an LI task, a traffic policy, a destination, ...): Writ answers
    /// it with an error naming the type; its content is not read.
    Unsupported {
        /// The `xsi:type` as written, with its namespace resolved: `{namespace}LocalName`.
        xsi_type: String,
        /// Its `ObjectIdentifier`, if it has one.
        identifier: Option<String>,
    },
}

impl Object {
    /// The object's identifier, when it has one.
    pub fn identifier(&self) -> Option<&str> {
        match self {
            Object::Authorisation(o) => Some(&o.base.identifier),
            Object::LdTask(o) => Some(&o.base.identifier),
            Object::LpTask(o) => Some(&o.base.identifier),
            Object::Document(o) => Some(&o.base.identifier),
            Object::Delivery(o) => Some(&o.base.identifier),
            Object::Notification(o) => Some(&o.base.identifier),
            Object::Unsupported { identifier, .. } => identifier.as_deref(),
        }
    }

    /// The ETSI `ObjectType` dictionary value (`Authorisation`, `LDTask`, ...), or the local
    /// name of an unsupported type.
    pub fn type_name(&self) -> &str {
        match self {
            Object::Authorisation(_) => "Authorisation",
            Object::LdTask(_) => "LDTask",
            Object::LpTask(_) => "LPTask",
            Object::Document(_) => "Document",
            Object::Delivery(_) => "Delivery",
            Object::Notification(_) => "Notification",
            Object::Unsupported { xsi_type, .. } => xsi_type.rsplit('}').next().unwrap_or(xsi_type),
        }
    }
}

/// `LIST` filters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListRequest {
    /// `ObjectType`.
    pub object_type: Option<DictionaryEntry>,
    /// `LastChanged`: only objects changed since.
    pub last_changed: Option<DateTime<FixedOffset>>,
    /// `MaximumObjectCount`.
    pub maximum: Option<u64>,
    /// `Status`.
    pub status: Option<DictionaryEntry>,
}

/// What an action request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `GET` of one object.
    Get {
        /// `Identifier`.
        identifier: String,
    },
    /// `CREATE` of an object.
    Create(Object),
    /// `UPDATE` of an object (Writ answers with an error: changes go through amendments).
    Update(Object),
    /// `LIST` of objects.
    List(ListRequest),
    /// `DELIVER` of an object.
    Deliver {
        /// `Identifier`.
        identifier: String,
        /// The delivered object.
        object: Object,
    },
    /// `GETCSPCONFIG`.
    GetCspConfig,
}

/// One numbered `ActionRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRequest {
    /// `ActionIdentifier`.
    pub id: u64,
    /// The action.
    pub action: Action,
}

/// `ActionUnsuccesfulInformation` (sic): `ErrorCode` and `ErrorDescription`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    /// `ErrorCode`.
    pub code: u64,
    /// `ErrorDescription`.
    pub description: String,
}

/// `ListResponseRecord`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRecord {
    /// `ObjectType` (ETSI `ObjectType` dictionary).
    pub object_type: DictionaryEntry,
    /// `Identifier`.
    pub identifier: String,
    /// `CountryCode`.
    pub country: Option<String>,
    /// `OwnerIdentifier`.
    pub owner: Option<String>,
    /// `Generation`.
    pub generation: u64,
    /// `LastChanged`.
    pub last_changed: Option<DateTime<FixedOffset>>,
}

/// One entry of a dictionary Writ publishes in `GETCSPCONFIGResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DictionaryValue {
    /// `Value`.
    pub value: String,
    /// `Meaning`.
    pub meaning: String,
}

/// A dictionary Writ publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dictionary {
    /// `Owner`.
    pub owner: String,
    /// `Name`.
    pub name: String,
    /// Its entries.
    pub entries: Vec<DictionaryValue>,
}

/// A provider-defined target format (`TargetFormatTypeDefinitionEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatDefinition {
    /// `FormatName`.
    pub name: String,
    /// `Description`.
    pub description: String,
    /// `FormatRegex`.
    pub regex: String,
}

/// One `TargetingConfiguration`: a format Writ accepts and the request types it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetingConfiguration {
    /// `FormatName`.
    pub format_name: String,
    /// `FormatOwner`.
    pub format_owner: String,
    /// `Guidance`.
    pub guidance: String,
    /// `AssociatedLDRequestTypes` (ETSI `RequestType` entries).
    pub ld_request_types: Vec<DictionaryEntry>,
    /// `AssociatedLPRequestTypes`.
    pub lp_request_types: Vec<DictionaryEntry>,
}

/// `GETCSPCONFIGResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CspConfig {
    /// `LastChanged`.
    pub last_changed: DateTime<FixedOffset>,
    /// `Dictionaries`.
    pub dictionaries: Vec<Dictionary>,
    /// `TargetFormatTypeDefinitions`: owner and entries.
    pub format_owner: String,
    /// The provider-defined formats.
    pub formats: Vec<FormatDefinition>,
    /// `TargetingConfigurations`.
    pub targeting: Vec<TargetingConfiguration>,
}

/// What an action response carries.
// A response holds a handful of outcomes, built once each: boxing the object would only add
// noise for the callers.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `GETResponse` with the object.
    Get(Object),
    /// `CREATEResponse` with the created object's identifier.
    Create {
        /// `Identifier`.
        identifier: String,
    },
    /// `UPDATEResponse` with the updated object's identifier (the optional object copy it may
    /// carry is not read).
    Update {
        /// `Identifier`.
        identifier: String,
    },
    /// `LISTResponse`.
    List(Vec<ListRecord>),
    /// `DELIVERResponse` with the delivered object's identifier.
    Deliver {
        /// `Identifier`.
        identifier: String,
    },
    /// `GETCSPCONFIGResponse`.
    CspConfig(Box<CspConfig>),
    /// `ErrorInformation`.
    Error(ErrorInfo),
}

/// One numbered `ActionResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionResponse {
    /// `ActionIdentifier` of the request it answers.
    pub id: u64,
    /// The outcome.
    pub outcome: Outcome,
}

/// The payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// `RequestPayload/ActionRequests`.
    Requests(Vec<ActionRequest>),
    /// `ResponsePayload/ActionResponses`.
    Responses(Vec<ActionResponse>),
    /// `ResponsePayload/ErrorInformation`: the whole message was refused.
    Error(ErrorInfo),
}

/// An `HI1Message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `Header`.
    pub header: Header,
    /// `Payload`.
    pub payload: Payload,
    /// Whether the message carried an XML `Signature` (kept in the raw message; not verified).
    pub signed: bool,
}
