"""Every named limit of PosHub in one place.

Names carry their unit last (``_bytes``, ``_days``, ``_fen``). A limit that an
operator may want to change is also exposed through settings (see
``poshub.core.settings``); the value here is then the default.
"""

from __future__ import annotations

from typing import Final

# --- Applicants -----------------------------------------------------------
ADULT_AGE_YEARS: Final = 18
"""A natural-person applicant must be at least this old on the day of the check."""

RESIDENT_ID_OLDEST_BIRTH_YEAR: Final = 1900
"""Birth dates before this year are treated as impossible."""

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

# --- Review SLA (Chinese working days) ------------------------------------
REVIEW_SLA_TARGET_WORKING_DAYS: Final = 3
REVIEW_SLA_BREACH_WORKING_DAYS: Final = 7
WORKING_DAY_SEARCH_DAYS_MAX: Final = 400
"""Bound on the day-by-day walk when adding working days (a year and a margin)."""

# --- Staff authentication -------------------------------------------------
LOGIN_FAILURES_BEFORE_LOCKOUT: Final = 10
LOCKOUT_MINUTES: Final = 30
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
