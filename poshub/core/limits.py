"""Every named limit of PosHub in one place.

Names carry their unit last (``_bytes``, ``_days``, ``_fen``). A limit that an
operator may want to change is also exposed through settings (see
``poshub.core.settings``); the value here is then the default.
"""

from __future__ import annotations

from typing import Final

from poshub.core.errors import N_

# --- Applicants -----------------------------------------------------------
ADULT_AGE_YEARS: Final = 18
"""A natural-person applicant must be at least this old on the day of the check."""

RESIDENT_ID_OLDEST_BIRTH_YEAR: Final = 1900
"""Birth dates before this year are treated as impossible."""

RESIDENT_ID_LENGTH: Final = 18
"""Characters of a second-generation resident ID number (GB 11643)."""

ID_CARD_LONG_TERM_MIN_AGE_YEARS: Final = 46
"""居民身份证法 art. 5: a card issued to someone 46 or older is valid long-term (长期)."""

ID_CARD_VALIDITY_YEARS_MAX: Final = 20
"""The longest fixed validity of a resident ID card (issued between 26 and 45)."""

BENEFICIAL_OWNERS_MAX: Final = 10
"""Beneficial owners (受益所有人) one enterprise application may name."""

BENEFICIAL_OWNER_SHARE_PERCENT_MIN: Final = 25
"""A natural person ultimately holding this share of an enterprise or more (25%以上, the
number included), directly or not, is a beneficial owner (受益所有人信息管理办法 2024,
art. 6); one who controls it otherwise is named on the basis of control."""

# Reasons are message templates (translated at the edge), one per kind of business.
_GAMBLING = N_("gambling and betting are illegal in mainland China (Criminal Law art. 303).")
_LOTTERY = N_(
    "lottery tickets may not be sold on credit (Lottery Regulations art. 18), and other "
    "lotteries and betting are gambling."
)
_QUASI_CASH = N_(
    "quasi-cash (foreign currency, money orders, traveller's cheques) turns card payments "
    "into cash (套现)."
)
_CASH = N_("cash disbursement is a bank's own service: a merchant's terminal never pays out cash.")
_TRANSFER = N_(
    "money transfer needs a payment licence of its own, and card-funded transfers are a "
    "cash-out channel."
)
_STORED_VALUE = N_(
    "loading stored-value cards with bank cards is a cash-out channel, and issuing them "
    "needs a licence."
)
PROHIBITED_MCC_REASON_POLICY: Final = N_("this acquirer's policy does not accept the category.")
"""The reason shown for a code an operator prohibits without giving one."""

PROHIBITED_MCCS: Final[dict[str, str]] = {
    "7995": _GAMBLING,
    "7801": _GAMBLING,
    "7802": _GAMBLING,
    "7800": _LOTTERY,
    "9406": _LOTTERY,
    "6051": _QUASI_CASH,
    "6050": _QUASI_CASH,
    "6010": _CASH,
    "6011": _CASH,
    "4829": _TRANSFER,
    "6540": _STORED_VALUE,
}
"""Merchant categories PosHub never onboards, with the reason (default of the setting
``prohibited_mccs``): illegal business and the cash-out (套现) channels that PBOC 2013
No. 9 and the card schemes single out."""

TERMINALS_PER_APPLICANT_MAX: Final = {
    "individual": 3,
    "individual_business": 10,
    "enterprise": 200,
}
"""Default ceiling on terminals one application may request, by applicant kind (R4)."""

TERMINAL_LINE_COUNT_MAX: Final = 100
"""Upper bound on ``count`` in one terminal line of an application."""

TERMINAL_LINES_MAX: Final = 10
"""Upper bound on distinct terminal models in one application."""

EXPECTED_MONTHLY_VOLUME_FEN_MAX: Final = 10_000_000_000_00
"""Ten billion yuan a month: anything larger is a typing error, not a merchant."""

TEXT_FIELD_LENGTH_MAX: Final = 200
ADDRESS_DETAIL_LENGTH_MAX: Final = 300
MESSAGE_LENGTH_MAX: Final = 4000

# --- Documents ------------------------------------------------------------
DOCUMENT_SIZE_BYTES_MAX: Final = 10 * 1024 * 1024
DOCUMENTS_PER_APPLICATION_MAX: Final = 40
IMAGE_PIXELS_MAX: Final = 60_000_000
"""Largest uploaded image, in pixels (a 60-megapixel camera); larger is refused as a
decompression bomb before it is decoded (Pillow's ``MAX_IMAGE_PIXELS`` is set to it)."""
PDF_OBJECTS_MAX: Final = 100_000
"""Most dictionaries and arrays the active-content walk of an uploaded PDF visits; past
it the file is refused as too complex (a scan or an export holds a few thousand)."""
PDF_NESTING_DEPTH_MAX: Final = 64
"""Deepest nesting of arrays and dictionaries the walk follows in an uploaded PDF."""

# --- Review SLA (Chinese working days) ------------------------------------
REVIEW_SLA_TARGET_WORKING_DAYS: Final = 3
REVIEW_SLA_BREACH_WORKING_DAYS: Final = 7
WORKING_DAY_SEARCH_DAYS_MAX: Final = 400
"""Bound on the day-by-day walk when adding working days (a year and a margin)."""

# --- Staff authentication -------------------------------------------------
LOGIN_FAILURES_PER_SOURCE_ACCOUNT_MAX: Final = 5
"""Failed logins to one account from one address within the window; then that address
may not log in to that account for ``LOGIN_THROTTLE_MINUTES`` (others still may)."""
LOGIN_FAILURES_PER_SOURCE_MAX: Final = 30
"""Failed logins from one address to any accounts within the window (a looser bound on
one guesser trying many names); then the address pauses as above."""
LOGIN_THROTTLE_WINDOW_MINUTES: Final = 15
LOGIN_THROTTLE_MINUTES: Final = 15
PASSWORD_HASHING_CONCURRENT_MAX: Final = 2
"""argon2 computations at once per process: each takes ~0.1 s of a core and 64 MB, so a
flood of logins must not take every worker thread and the memory."""
PASSWORD_HASHING_WAITING_MAX: Final = 8
"""Logins waiting for a hashing slot; more are answered 503 at once."""
PASSWORD_HASHING_WAIT_SECONDS: Final = 2.0
"""How long a login waits for a hashing slot before it is answered 503."""
SESSION_IDLE_MINUTES: Final = 30
SESSION_ABSOLUTE_HOURS: Final = 12
PASSWORD_LENGTH_MIN: Final = 12

# --- Reads ----------------------------------------------------------------
PAGE_SIZE_DEFAULT: Final = 50
PAGE_SIZE_MAX: Final = 200
TRANSACTION_SEARCH_DAYS_MAX: Final = 92
"""A transaction search spans at most this many calendar days, both ends included: any
calendar quarter fits, and the journal is never scanned for years at once."""
TRANSACTION_SEARCH_DEFAULT_DAYS: Final = 7
"""Days a transaction search covers, up to today, when it names no date and no RRN."""
TRANSACTION_SEARCH_PAGES_MAX: Final = 500
"""Deepest page of a transaction search: OFFSET costs grow with the page, and nobody
reads 100,000 rows page by page (narrow the filters instead)."""
TRANSACTION_TIMELINE_MAX: Final = 50
"""Rows in one transaction's timeline (its original and everything acting on either)."""
TERMINAL_RECENT_TRANSACTIONS: Final = 20
"""Latest transactions on a terminal's page; the search has the rest."""
TERMINAL_BATCHES_SHOWN: Final = 10
"""Newest batches, with their settlement totals, on a terminal's page."""
AUDIT_VERIFY_BATCH_ROWS: Final = 5000
AUDIT_ANCHOR_INTERVAL_MINUTES: Final = 10
"""How often the worker anchors the audit chain head outside the database
(``POSHUB_AUDIT_ANCHOR_INTERVAL_MINUTES``): rows newer than the last anchor are protected
by their MACs only, not against deletion."""
KEY_EXPORT_REQUEST_VALID_HOURS: Final = 24
"""A key-export request must be approved and collected within this time, or asked again."""
NOTIFICATION_DISPATCH_BATCH_MAX: Final = 100
NOTIFICATION_ATTEMPTS_MAX: Final = 8

# --- Contracts ------------------------------------------------------------
CONTRACT_TERM_MONTHS_MIN: Final = 12
CONTRACT_TERM_MONTHS_MAX: Final = 60
CONTRACT_TERM_MONTHS_DEFAULT: Final = 24
CONTRACT_EFFECTIVE_AHEAD_DAYS_MAX: Final = 366
"""An amendment may take effect at most a year ahead."""
SIGNER_NAME_LENGTH_MAX: Final = 100

# --- Inventory, keys and TMS ----------------------------------------------
STOCK_CSV_BYTES_MAX: Final = 2 * 1024 * 1024
STOCK_CSV_ROWS_MAX: Final = 5000
STOCK_CSV_FIELD_CHARS_MAX: Final = 64
"""Longest cell of a stock file (the longest column, the warehouse, holds 64): a longer one
is refused naming its row and column, before anything else is read from it."""
STOCK_CSV_COLUMNS_MAX: Final = 16
"""Most cells one row of a stock file may have."""
DEVICE_EXPORT_ROWS_MAX: Final = 100_000
"""Most devices one inventory CSV export holds (a filter narrows a larger fleet)."""
"""One stock-in file; larger deliveries are split (the report must stay readable)."""
SERIAL_NUMBER_LENGTH_MAX: Final = 32
TMS_SIGNATURE_SKEW_SECONDS: Final = 300
"""A device request's timestamp may differ from the host clock by at most this much."""
TMS_RECEIPT_FOOTER_LENGTH_MAX: Final = 120
TMS_TIMEOUT_SECONDS_DEFAULT: Final = 60
TMS_SINGLE_TRANSACTION_LIMIT_FEN_DEFAULT: Final = 5_000_000
"""¥50,000 per card transaction unless the contract's risk profile says otherwise."""
DEVICE_SECRET_BYTES: Final = 32
TMS_BODY_BYTES_MAX: Final = 16 * 1024
TMS_REFUSAL_FLUSH_SECONDS: Final = 60.0
"""Default of ``tms_refusal_flush_seconds``: refused TMS requests are counted in memory and
written at most this often (and when staff read the counts)."""
"""A TMS request body (a heartbeat) is a few hundred bytes; larger ones are refused."""

# --- Fieldwork (SLA per work-order kind, in Chinese working days) ----------
WORK_ORDER_SLA_WORKING_DAYS: Final = {
    "site_survey": 3,
    "shipping": 5,
    "installation": 5,
    "repair": 1,
    "swap": 2,
}
WORK_ORDER_PHOTOS_MAX: Final = 20
WORK_ORDER_PHOTO_BYTES_MAX: Final = 10 * 1024 * 1024

# --- Gateway (ISO 8583 host) --------------------------------------------------
GATEWAY_FRAME_BYTES_MAX: Final = 2048
"""Bytes after the 2-byte length prefix (spec §1.1); a longer frame closes the connection."""
GATEWAY_CONNECTIONS_PER_ADDRESS_MAX: Final = 128
"""Open connections from one IP address; further ones are closed at once."""
GATEWAY_CONNECTIONS_MAX: Final = 4096
GATEWAY_IDLE_SECONDS: Final = 120
"""A connection with no complete frame for this long is closed."""
GATEWAY_FRAME_READ_SECONDS: Final = 10
"""A frame whose length arrived must be complete within this time (slow-loris bound)."""
GATEWAY_UPSTREAM_TIMEOUT_SECONDS: Final = 10.0
"""Wait for the network's answer; well inside the terminal's own 30 s (spec §11.11)."""
GATEWAY_MAC_FAILURES_BEFORE_LOCK: Final = 5
"""Consecutive wrong MACs after which the terminal is locked (a staff unlock frees it)."""
GATEWAY_TERMINAL_CACHE_SECONDS: Final = 2.0
"""How long the gateway trusts its cached view of a terminal and merchant: a lock, a
freeze or a parameter change takes effect within this time."""
GATEWAY_GIL_SWITCH_SECONDS: Final = 0.001
"""The gateway process's ``sys.setswitchinterval``: how long the journal writer may wait
for the GIL after each SQLite call (Python's default is 5 ms)."""
GATEWAY_JOURNAL_BATCH_MAX: Final = 512
"""Journal rows written in one group commit."""
GATEWAY_JOURNAL_QUEUE_MAX: Final = 20_000
"""Rows waiting for the journal writer; beyond this new requests are answered 96."""
GATEWAY_DEDUPE_CACHE_MAX: Final = 200_000
"""Recent (TID, batch, STAN, date) keys kept in memory for repeat detection."""
GATEWAY_RRN_BLOCK: Final = 1000
"""RRNs reserved from the database at a time by one gateway process."""
GATEWAY_COMPLETION_TOLERANCE_PERCENT: Final = 115
"""A pre-auth completion may capture up to this share of the pre-authorised amount."""
GATEWAY_PENDING_REQUESTS_PER_LINK_MAX: Final = 4096
"""Requests outstanding on the network link at once."""
SAF_RETRY_SECONDS_MIN: Final = 1.0
SAF_RETRY_SECONDS_MAX: Final = 60.0
"""Store-and-forward backoff: doubling from the minimum up to the maximum."""
SAF_BATCH_MAX: Final = 100
"""Reversals sent per store-and-forward pass."""
NETWORK_LINK_CONNECTIONS: Final = 4
"""Persistent TCP connections from one gateway process to the network."""
LOADGEN_TERMINALS_MAX: Final = 1024
LOADGEN_DURATION_SECONDS_MAX: Final = 3600
QR_CODE_LENGTH_MAX: Final = 64

# --- Network link and network simulator ------------------------------------------
NETWORK_LINK_CONNECT_SECONDS: Final = 2.0
"""One TCP connect attempt to the network; a network that does not accept within this
time counts as down for that attempt."""
NETWORK_LINK_BACKOFF_SECONDS_MIN: Final = 0.05
NETWORK_LINK_BACKOFF_SECONDS_MAX: Final = 5.0
"""Reconnect backoff of one link connection: doubling from the minimum up to the maximum,
back to the minimum once a connection is up again."""
NETWORK_SIM_CONNECTIONS_MAX: Final = 64
"""Connections the network simulator accepts at once (gateways open a handful each)."""
NETWORK_SIM_WRITE_BUFFER_BYTES_MAX: Final = 256 * 1024
"""Unsent response bytes on one simulator connection before it stops reading requests
from that connection (a peer that does not read cannot grow the simulator's memory)."""
NETWORK_SIM_FLUSH_SECONDS: Final = 0.1
"""The simulator writes changed accounts and authorizations to SQLite this often."""
NETWORK_SIM_RECORDS_IN_MEMORY_MAX: Final = 200_000
"""Authorizations the simulator keeps in memory; older ones are read back from SQLite on
demand (a void, refund or reversal of an old transaction)."""
NETWORK_SIM_ACCOUNTS_IN_MEMORY_MAX: Final = 100_000
"""Card and wallet accounts kept in memory; the same write-back rule as authorizations."""
NETWORK_SIM_AUTHORIZATIONS_LIST_MAX: Final = 1000
"""Records one call of ``NetworkSimulator.authorizations`` returns at most."""

# --- Request bodies and staff login (web/edge.py, staff/) --------------------------
REQUEST_BODY_BYTES_MAX: Final = 64 * 1024
"""A JSON or form body (an application with every field filled is a few KB). A larger
one is answered 413 before it is read whole."""
UPLOAD_BODY_BYTES_MAX: Final = (
    max(DOCUMENT_SIZE_BYTES_MAX, WORK_ORDER_PHOTO_BYTES_MAX, STOCK_CSV_BYTES_MAX) + 64 * 1024
)
"""A multipart upload: one file at the largest per-file limit, and the fields around it
(each route still holds its file to its own limit)."""

# --- Personal information: retention and purge (docs/privacy.md) -------------------
RETENTION_YEARS_AFTER_TERMINATION: Final = 5
"""Years a closed merchant's records are kept after its termination date before the
purge job anonymises the personal data in them (银行卡收单业务管理办法 art. 14: merchant
files at least five years after the relationship ends; AML law: five years after the
business relationship ends). ``POSHUB_RETENTION_YEARS`` overrides it."""
RETENTION_YEARS_MIN: Final = 5
RETENTION_YEARS_MAX: Final = 30
PURGE_BATCH_MAX: Final = 50
"""Merchants anonymised per purge transaction (the worker's pass or one CLI batch)."""
CLOSURE_REASON_LENGTH_MAX: Final = 500

# --- Applicant mobile proof and rate limits (onboarding/mobile.py) -----------------
MOBILE_CODE_DIGITS: Final = 6
"""Digits of the one-time code sent by SMS to prove the applicant's mobile number."""
MOBILE_CODE_VALID_MINUTES: Final = 10
"""A code is good for this long after it is sent."""
MOBILE_CODE_ATTEMPTS_MAX: Final = 5
"""Wrong entries one code allows; after them it is dead and a new one must be sent."""
MOBILE_CODE_RESEND_SECONDS: Final = 60
"""Cool-down between two codes for the same application."""
MOBILE_CODES_PER_NUMBER_PER_DAY: Final = 5
"""Codes sent to one mobile number in 24 hours (``POSHUB_MOBILE_CODES_PER_NUMBER_PER_DAY``)."""
MOBILE_CODES_PER_ADDRESS_PER_DAY: Final = 20
"""Codes asked for from one source address in 24 hours
(``POSHUB_MOBILE_CODES_PER_ADDRESS_PER_DAY``)."""
APPLICATIONS_PER_MOBILE_PER_DAY: Final = 5
"""Applications started with one mobile number in 24 hours
(``POSHUB_APPLICATIONS_PER_MOBILE_PER_DAY``)."""
APPLICATIONS_PER_ADDRESS_PER_DAY: Final = 20
"""Applications started from one source address in 24 hours
(``POSHUB_APPLICATIONS_PER_ADDRESS_PER_DAY``)."""
RATE_LIMIT_WINDOW_HOURS: Final = 24
"""The sliding window of the per-day limits above."""
ACCESS_CODE_FAILURES_PER_ADDRESS: Final = 10
"""Wrong access codes one source address may enter on the tracking login within
:data:`ACCESS_CODE_FAILURE_WINDOW_MINUTES`; then it must wait."""
ACCESS_CODE_FAILURE_WINDOW_MINUTES: Final = 15


# --- Risk control (poshub/risk/) -----------------------------------------------------
AMOUNT_FEN_MAX: Final = 999_999_999_999
"""The largest amount field 4 can carry (12 digits): no limit or threshold exceeds it."""
RISK_QR_PER_TRANSACTION_FEN: Final = 1_000_000
"""QR payments: 10,000 CNY a payment (R14, the seeds), until a risk officer sets another."""
RISK_QR_PER_DAY_FEN: Final = 10_000_000
"""QR payments: 100,000 CNY a business day per merchant, across all its terminals."""
RISK_REFRESH_SECONDS: Final = 2.0
"""How often a gateway process rereads rules, limits, freezes and blocked cards (the same
bound as its terminal views): a freeze takes effect within this time."""
RISK_WINDOW_EVENTS_MAX: Final = 1_000
"""Events one velocity window keeps per card or terminal; more are counted, not kept."""
RISK_TRACKED_KEYS_MAX: Final = 500_000
"""Cards, terminals and merchants the engine keeps windows for; the least recently seen
are forgotten beyond it (bounded memory under a card-testing flood)."""
RISK_ALERT_QUEUE_MAX: Final = 10_000
"""Alerts waiting for the engine's writer; beyond it they are counted and dropped (the
authorization is never held up by alert writing)."""
RISK_PREVIEW_DAYS_MAX: Final = 31
"""A rule preview replays at most this many days of the journal."""
RISK_PREVIEW_ROWS_MAX: Final = 2_000_000
"""…and at most this many journal rows."""
RISK_PREVIEW_DAYS_DEFAULT: Final = 7
"""The days a rule preview replays when the risk officer does not say."""
RISK_CASE_ATTACHMENT_BYTES_MAX: Final = 10 * 1024 * 1024
RISK_GRADE_BATCH_MAX: Final = 200
"""Merchants one worker transaction regrades for a month (poshub/risk/jobs.py)."""
RISK_GRADE_HISTORY_MAX: Final = 24
"""Gradings the merchant page lists (two years of monthly regrades)."""
RISK_LIST_BATCH_MAX: Final = 50
"""List checks (new or retried) one worker pass asks the provider for."""
RISK_LIST_RECHECK_HOURS: Final = 24
"""A live merchant is checked against the external lists again after this long (daily)."""
RISK_LIST_RETRY_SECONDS_MIN: Final = 60
RISK_LIST_RETRY_SECONDS_MAX: Final = 3_600
"""An unanswered list check is retried after 1, 2, 4… minutes, at most an hour apart."""
RISK_INSTALL_LOCATION_REASON_MAX: Final = 300
RISK_COUNTERS_WATCHED_MAX: Final = 50_000
"""Limit counters a gateway process rereads on every risk refresh (the keys it checked a
limit on most recently); its in-memory totals only decline early, the database decides."""
RISK_REBUILD_ROWS_MAX: Final = 500_000
"""Journal rows (the last 24 hours, newest first) a starting gateway replays to rebuild its
velocity windows and the day's figures."""
RISK_MERCHANT_PROFILES_MAX: Final = 200_000
"""Merchants whose profile (MCC, hours, grade, declared volume) one refresh reads."""
RISK_READ_ROWS_MAX: Final = 100_000
"""Rows of each other risk table (rules, limits, freezes, blocked cards) one refresh reads."""
RISK_PREVIEW_CHUNK_ROWS: Final = 5_000
"""Journal rows a rule preview reads per query while it streams."""
GATEWAY_JOURNAL_DEADLOCK_RETRIES: Final = 3
"""Times the journal writer retries a group that PostgreSQL chose as a deadlock victim."""

# --- Ledger (poshub/settlement/ledger.py) ------------------------------------
LEDGER_SOURCE_EVENT_MAX_CHARS: Final = 64
"""A ledger entry's source event key (``sale:<RRN>``, ``payout:<id>``)."""
LEDGER_ACCOUNT_CODE_MAX_CHARS: Final = 64
"""A ledger account code, ``kind`` or ``kind:subject``."""
LEDGER_ENTRY_LINES_MAX: Final = 1_000
"""Lines one ledger entry may have (a day's net settlement for one merchant stays far below)."""
LEDGER_LINE_AMOUNT_MAX_FEN: Final = 10**15
"""The largest amount of one ledger line (10 trillion yuan): sums of many stay in 64 bits."""
LEDGER_VERIFY_PROBLEMS_MAX: Final = 20
"""Problems of each kind ``poshub ledger verify`` reads and names; the counts are complete."""
LEDGER_BALANCES_ACCOUNTS_MAX: Final = 10_000
"""Accounts one balances query returns (per-merchant accounts beyond are cut, with a note)."""

# --- Reconciliation (poshub/settlement/clearing_file.py, reconcile.py) ----------------
CLEARING_FILE_LINE_MAX_CHARS: Final = 512
"""One line of the network's clearing file (a real line is about 130 characters)."""
CLEARING_FILE_LINES_MAX: Final = 2_000_000
"""Lines of one clearing file (header and trailer included): a day of a large acquirer."""
CLEARING_AMOUNT_MAX_FEN: Final = 10**12
"""The largest amount or fee of one clearing line (10 billion yuan); larger is garbage."""
RECONCILIATION_SHOWN_MAX: Final = 10
"""Exceptions ``poshub reconcile`` lists on the terminal; the counts are complete."""
RECONCILIATION_NOTE_MAX_CHARS: Final = 1_000
"""The note operations writes when resolving a reconciliation exception."""
