-- njord session db. One file holds one session (SPEC §3).
-- Sections marked `-- @version N` are what version N added; a fresh db runs them all,
-- and the migration to N runs section N (njord/store/migrations.py).
-- Money and quantities are never REAL: integers scaled by 1e8 (columns ending _e8).
-- Times are integer epoch milliseconds (columns ending _ms).
PRAGMA application_id = 1852469106; -- 'njor'

-- @version 1

CREATE TABLE runs (
    run_id          TEXT PRIMARY KEY,
    mode            TEXT NOT NULL CHECK (mode IN ('backtest', 'shadow', 'paper', 'live')),
    status          TEXT NOT NULL CHECK (status IN ('running', 'stopped', 'finished', 'failed')),
    config_toml     TEXT NOT NULL,
    config_sha256   TEXT NOT NULL,
    njord_version   TEXT NOT NULL,
    git_sha         TEXT NOT NULL,
    git_dirty       INTEGER NOT NULL,
    python          TEXT NOT NULL,
    os              TEXT NOT NULL,
    data_sources    TEXT NOT NULL,  -- JSON array of {path, sha256, rows}
    seed            INTEGER NOT NULL,
    strategy_path   TEXT NOT NULL,
    strategy_sha256 TEXT NOT NULL,
    strategy_source TEXT,           -- kept when the strategy lives outside the njord package
    manifest_sha256 TEXT NOT NULL,  -- over everything above except wall-clock and host fields
    started_ms      INTEGER NOT NULL,
    ended_ms        INTEGER
);

CREATE TABLE lease (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    pid          INTEGER NOT NULL,
    host         TEXT NOT NULL,
    token        TEXT NOT NULL,
    started_ms   INTEGER NOT NULL,
    heartbeat_ms INTEGER NOT NULL
);

CREATE TABLE logs (
    seq       INTEGER PRIMARY KEY,
    run_id    TEXT,
    ts_ms     INTEGER NOT NULL,
    component TEXT NOT NULL,
    level     TEXT NOT NULL CHECK (level IN ('DEBUG', 'INFO', 'WARNING', 'ERROR')),
    msg       TEXT NOT NULL,
    context   TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE trading_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    state      TEXT NOT NULL CHECK (state IN ('ACTIVE', 'REDUCING', 'HALTED')),
    changed_ms INTEGER NOT NULL,
    changed_by TEXT NOT NULL,
    reason     TEXT NOT NULL
);
INSERT INTO trading_state VALUES (1, 'ACTIVE', 0, 'init', 'new session');

CREATE VIEW v_runs AS
SELECT run_id, mode, status, strategy_path, config_sha256, manifest_sha256,
       datetime(started_ms / 1000, 'unixepoch') AS started_utc,
       datetime(ended_ms / 1000, 'unixepoch') AS ended_utc
FROM runs;


-- @version 2
-- Bars the session used, as Arrow IPC chunks (fast to write; `njord verify` re-reads them).
CREATE TABLE bar_chunks (
    first_ts_ms INTEGER PRIMARY KEY,
    last_ts_ms  INTEGER NOT NULL,
    rows        INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    arrow       BLOB
);

CREATE TABLE qc_events (
    seq        INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('gap', 'duplicate', 'filled', 'skipped')),
    from_ts_ms INTEGER NOT NULL,
    to_ts_ms   INTEGER NOT NULL,
    bars       INTEGER NOT NULL
);

CREATE TABLE qc_summary (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    policy       TEXT NOT NULL,
    bars_in      INTEGER NOT NULL,
    bars_out     INTEGER NOT NULL,
    gaps         INTEGER NOT NULL,
    missing_bars INTEGER NOT NULL,
    filled_bars  INTEGER NOT NULL,
    duplicates   INTEGER NOT NULL,
    first_gap_ms INTEGER,
    last_gap_ms  INTEGER
);

-- Every intent a strategy emitted, with its verdict: "why didn't it trade?" is one query.
CREATE TABLE intents (
    intent_id       INTEGER PRIMARY KEY,
    bar_ts_ms       INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    symbol          TEXT NOT NULL,
    side            TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
    type            TEXT NOT NULL CHECK (type IN ('MARKET', 'LIMIT')),
    qty_e8          INTEGER NOT NULL,
    limit_e8        INTEGER,
    tag             TEXT NOT NULL,
    allowed         INTEGER NOT NULL,
    reason          TEXT NOT NULL,
    rule_inputs     TEXT NOT NULL,
    client_order_id TEXT,
    UNIQUE (bar_ts_ms, seq)
);

CREATE TABLE orders (
    client_order_id TEXT PRIMARY KEY,
    intent_id       INTEGER NOT NULL REFERENCES intents (intent_id),
    symbol          TEXT NOT NULL,
    side            TEXT NOT NULL,
    type            TEXT NOT NULL,
    qty_e8          INTEGER NOT NULL,
    limit_e8        INTEGER,
    status          TEXT NOT NULL
        CHECK (status IN ('NEW', 'SUBMITTED', 'PARTIALLY_FILLED', 'FILLED', 'CANCELED', 'REJECTED')),
    filled_qty_e8   INTEGER NOT NULL DEFAULT 0,
    avg_price_e8    INTEGER,
    reason          TEXT,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
);

CREATE TABLE order_events (
    seq             INTEGER PRIMARY KEY,
    client_order_id TEXT NOT NULL REFERENCES orders (client_order_id),
    ts_ms           INTEGER NOT NULL,
    status          TEXT NOT NULL,
    detail          TEXT NOT NULL DEFAULT ''
);

CREATE TABLE fills (
    fill_id         INTEGER PRIMARY KEY,
    client_order_id TEXT NOT NULL REFERENCES orders (client_order_id),
    ts_ms           INTEGER NOT NULL,
    symbol          TEXT NOT NULL,
    side            TEXT NOT NULL,
    qty_e8          INTEGER NOT NULL,
    price_e8        INTEGER NOT NULL,
    notional_e8     INTEGER NOT NULL,
    fee_e8          INTEGER NOT NULL,
    realised_e8     INTEGER NOT NULL  -- gross of fees: fees are counted once, in fee_e8
);

-- A closed piece of a FIFO lot: one round trip.
CREATE TABLE trades (
    trade_id      INTEGER PRIMARY KEY,
    symbol        TEXT NOT NULL,
    direction     TEXT NOT NULL CHECK (direction IN ('LONG', 'SHORT')),
    qty_e8        INTEGER NOT NULL,
    entry_ms      INTEGER NOT NULL,
    entry_cost_e8 INTEGER NOT NULL,
    exit_ms       INTEGER NOT NULL,
    exit_value_e8 INTEGER NOT NULL,
    pnl_e8        INTEGER NOT NULL,
    fees_e8       INTEGER NOT NULL,
    entry_fill_id INTEGER NOT NULL REFERENCES fills (fill_id),
    exit_fill_id  INTEGER NOT NULL REFERENCES fills (fill_id)
);

-- Open FIFO lots; qty and cost are signed (short < 0). Replaced whole at every change.
CREATE TABLE lots (
    lot_seq       INTEGER PRIMARY KEY,
    symbol        TEXT NOT NULL,
    entry_fill_id INTEGER NOT NULL REFERENCES fills (fill_id),
    entry_ms      INTEGER NOT NULL,
    qty_e8        INTEGER NOT NULL,
    cost_e8       INTEGER NOT NULL,
    fee_e8        INTEGER NOT NULL
);

CREATE TABLE positions (
    symbol      TEXT PRIMARY KEY,
    qty_e8      INTEGER NOT NULL,
    cost_e8     INTEGER NOT NULL,
    realised_e8 INTEGER NOT NULL,
    fees_e8     INTEGER NOT NULL
);

CREATE TABLE account (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    cash_e8        INTEGER NOT NULL,
    realised_e8    INTEGER NOT NULL,
    fees_e8        INTEGER NOT NULL,
    peak_equity_e8 INTEGER NOT NULL,
    last_bar_ms    INTEGER,
    bars           INTEGER NOT NULL,
    next_intent    INTEGER NOT NULL
);

CREATE TABLE equity (
    ts_ms       INTEGER PRIMARY KEY,
    close_e8    INTEGER NOT NULL,
    cash_e8     INTEGER NOT NULL,
    position_e8 INTEGER NOT NULL,
    equity_e8   INTEGER NOT NULL
);

CREATE TABLE risk_state (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    day               TEXT NOT NULL,
    daily_realised_e8 INTEGER NOT NULL,  -- realised P&L net of fees, this UTC day
    last_block        TEXT,
    counters          TEXT NOT NULL      -- JSON {reason: count}
);

CREATE TABLE state_changes (
    seq        INTEGER PRIMARY KEY,
    ts_ms      INTEGER NOT NULL,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    reason     TEXT NOT NULL
);

-- Operator controls posted by any process; the loop applies them in seq order.
CREATE TABLE controls (
    seq        INTEGER PRIMARY KEY,
    posted_ms  INTEGER NOT NULL,
    command    TEXT NOT NULL CHECK (command IN ('halt', 'reduce', 'flatten', 'resume')),
    reason     TEXT NOT NULL,
    posted_by  TEXT NOT NULL,
    applied_ms INTEGER,
    bar_ts_ms  INTEGER
);

CREATE VIEW v_equity AS
SELECT datetime(ts_ms / 1000, 'unixepoch') AS ts_utc, close_e8 / 1e8 AS close,
       cash_e8 / 1e8 AS cash, position_e8 / 1e8 AS position, equity_e8 / 1e8 AS equity
FROM equity;

CREATE VIEW v_orders AS
SELECT client_order_id, symbol, side, type, qty_e8 / 1e8 AS qty, limit_e8 / 1e8 AS limit_price,
       status, filled_qty_e8 / 1e8 AS filled_qty, avg_price_e8 / 1e8 AS avg_price, reason,
       datetime(created_ms / 1000, 'unixepoch') AS created_utc
FROM orders;

CREATE VIEW v_fills AS
SELECT fill_id, client_order_id, datetime(ts_ms / 1000, 'unixepoch') AS ts_utc, symbol, side,
       qty_e8 / 1e8 AS qty, price_e8 / 1e8 AS price, fee_e8 / 1e8 AS fee,
       realised_e8 / 1e8 AS realised
FROM fills;

CREATE VIEW v_trades AS
SELECT trade_id, symbol, direction, qty_e8 / 1e8 AS qty,
       datetime(entry_ms / 1000, 'unixepoch') AS entry_utc,
       datetime(exit_ms / 1000, 'unixepoch') AS exit_utc,
       pnl_e8 / 1e8 AS pnl, fees_e8 / 1e8 AS fees, (pnl_e8 - fees_e8) / 1e8 AS net_pnl
FROM trades;

CREATE VIEW v_blocked_intents AS
SELECT intent_id, datetime(bar_ts_ms / 1000, 'unixepoch') AS bar_utc, symbol, side, type,
       qty_e8 / 1e8 AS qty, reason, rule_inputs
FROM intents WHERE allowed = 0;


-- @version 3
-- The decision log: append-only, one record per state-affecting event, each carrying the
-- hash of the one before (`njord audit` walks it). `ref` names the row a record is about.
CREATE TABLE decisions (
    seq       INTEGER PRIMARY KEY,
    bar_ts_ms INTEGER NOT NULL,
    kind      TEXT NOT NULL
        CHECK (kind IN ('intent', 'order', 'fill', 'state', 'control', 'log', 'commit')),
    ref       TEXT NOT NULL,
    payload   TEXT NOT NULL,  -- canonical JSON (sorted keys)
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL   -- sha256(prev_hash | kind | ref | payload)
);

-- The book at a bar: on every position change and every `store.snapshot_every` bars.
CREATE TABLE snapshots (
    snapshot_id  INTEGER PRIMARY KEY,
    bar_ts_ms    INTEGER NOT NULL,
    decision_seq INTEGER NOT NULL,  -- the last decision record the snapshot includes
    state        BLOB NOT NULL      -- msgpack of njord.core.book.BookState
);


-- @version 4
-- Telemetry of live-paced sessions: one row per measurement, committed with its bar.
CREATE TABLE metrics (
    bar_ts_ms INTEGER NOT NULL,
    name      TEXT NOT NULL,
    value     REAL NOT NULL  -- an analytic, never money
);
CREATE INDEX metrics_by_name ON metrics (name, bar_ts_ms);

-- Alerts fire once per episode: `cleared_ms` closes the episode.
CREATE TABLE alerts (
    seq        INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('bar_gap', 'error_rate', 'daily_loss_halt')),
    raised_ms  INTEGER NOT NULL,
    cleared_ms INTEGER,
    msg        TEXT NOT NULL
);


-- @version 5
-- Daily rollup: one row per UTC day. P&L is the change of the last equity of the day from
-- the last of the day before (on the first day: from the first bar's equity).
CREATE VIEW v_daily AS
WITH days AS (
    SELECT ts_ms / 86400000 AS d, count(*) AS bars, min(ts_ms) AS first_ts,
           max(ts_ms) AS last_ts
    FROM equity GROUP BY ts_ms / 86400000
),
o AS (SELECT created_ms / 86400000 AS d, count(*) AS n FROM orders GROUP BY 1),
f AS (
    SELECT ts_ms / 86400000 AS d, count(*) AS n, sum(fee_e8) AS fees,
           sum(realised_e8) AS realised
    FROM fills GROUP BY 1
),
m AS (
    SELECT bar_ts_ms / 86400000 AS d, max(value) AS worst
    FROM metrics WHERE name = 'decision_latency_ms' GROUP BY 1
)
SELECT days.d * 86400000 AS day_ms,
       days.bars AS bars,
       (SELECT equity_e8 FROM equity WHERE ts_ms = days.last_ts) AS equity_e8,
       (SELECT equity_e8 FROM equity WHERE ts_ms = days.last_ts) - COALESCE(
           (SELECT equity_e8 FROM equity WHERE ts_ms < days.first_ts
            ORDER BY ts_ms DESC LIMIT 1),
           (SELECT equity_e8 FROM equity WHERE ts_ms = days.first_ts)) AS pnl_e8,
       COALESCE(o.n, 0) AS orders,
       COALESCE(f.n, 0) AS fills,
       COALESCE(f.fees, 0) AS fees_e8,
       COALESCE(f.realised, 0) AS realised_e8,
       m.worst AS decision_latency_max_ms
FROM days LEFT JOIN o USING (d) LEFT JOIN f USING (d) LEFT JOIN m USING (d);


-- @version 6
-- More alert kinds (SQLite cannot alter a CHECK, so the table is rebuilt; it holds one row
-- per episode): a flatten whose closing order was refused, an alert channel that failed,
-- a session found dead by its next start. Operational config amendments, and where each
-- alert edge was sent.
CREATE TABLE alerts_v6 (
    seq        INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('bar_gap', 'error_rate', 'daily_loss_halt',
                                             'flatten_refused', 'alert_channel', 'session_died')),
    raised_ms  INTEGER NOT NULL,
    cleared_ms INTEGER,
    msg        TEXT NOT NULL
);
INSERT INTO alerts_v6 SELECT seq, kind, raised_ms, cleared_ms, msg FROM alerts;
DROP TABLE alerts;
ALTER TABLE alerts_v6 RENAME TO alerts;

-- Config amendments: an operational key (venue.*, risk.*, store.*, runtime.kill_file, ...)
-- changed when a session was carried on. Values are TOML literals (NULL: the key was
-- unset); the change governs the bars after `after_bar_ms` (NULL: from the first bar).
CREATE TABLE config_amendments (
    seq          INTEGER PRIMARY KEY,
    posted_ms    INTEGER NOT NULL,
    posted_by    TEXT NOT NULL,
    after_bar_ms INTEGER,
    key          TEXT NOT NULL,
    old_value    TEXT,
    new_value    TEXT NOT NULL
);

-- One row per alert edge per channel: wall-clock facts, outside the decision log.
CREATE TABLE alert_deliveries (
    seq     INTEGER PRIMARY KEY,
    ts_ms   INTEGER NOT NULL,  -- wall clock
    channel TEXT NOT NULL,     -- command | webhook | email
    kind    TEXT NOT NULL,
    event   TEXT NOT NULL CHECK (event IN ('raised', 'cleared')),
    ok      INTEGER NOT NULL,
    detail  TEXT NOT NULL      -- 'sent', or why not (never a secret)
);

-- @version 7
-- The execution path in three phases (issue 13). The paper broker's own state, as a venue
-- keeps it: every order it received, what it answered, and the last bar it matched (written
-- in its own transaction, before it answers). Each fill's trade id at its venue, so that a
-- venue repeating a report after a restart is applied once. The bar whose decisions are
-- committed (phase 1) even when its reports (phase 3) are not yet.
CREATE TABLE paper_orders (
    client_order_id TEXT PRIMARY KEY,
    open            INTEGER NOT NULL,
    sends           INTEGER NOT NULL DEFAULT 1,  -- submits received for this id
    order_msg       BLOB NOT NULL,               -- msgpack of the Order as received
    reports         BLOB NOT NULL                -- msgpack of what the broker answered
);
CREATE TABLE paper_market (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    bar BLOB NOT NULL                            -- msgpack of the last bar matched
);
CREATE TABLE fill_trades (
    fill_id  INTEGER PRIMARY KEY REFERENCES fills (fill_id),
    trade_id TEXT NOT NULL
);
-- The strategy's own state (its snapshot hooks) and the session's bar history, saved with a
-- book snapshot at the same point of the decision log: a restart starts there and feeds
-- only the bars after it.
CREATE TABLE strategy_snapshots (
    snapshot_id INTEGER PRIMARY KEY REFERENCES snapshots (snapshot_id),
    bar_ts_ms   INTEGER NOT NULL,
    strategy    BLOB NOT NULL,
    timeframes  BLOB NOT NULL
);
CREATE TABLE decided (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    bar_ms INTEGER NOT NULL                      -- last bar whose phase 1 committed
);

-- Live sessions' reconciliations with the venue, and what they could not explain.
CREATE TABLE reconciliations (
    seq          INTEGER PRIMARY KEY,
    ts_ms        INTEGER NOT NULL,   -- venue clock
    bar_ts_ms    INTEGER,            -- the last committed bar (NULL: before the first)
    symbol       TEXT NOT NULL,
    cursor       TEXT NOT NULL,      -- the last venue trade id seen ('' = none yet)
    balances     TEXT NOT NULL,      -- JSON {asset: free + locked, e8} as the venue showed them
    expected     TEXT NOT NULL,      -- JSON {asset: e8} the book expected, missed fills applied
    missed_fills INTEGER NOT NULL,
    queried      INTEGER NOT NULL,
    external     INTEGER NOT NULL,
    action       TEXT NOT NULL CHECK (action IN ('none', 'halt', 'adopt')),
    accepted     INTEGER NOT NULL    -- 1: `balances` is the baseline from here on
);

CREATE TABLE external_events (
    seq         INTEGER PRIMARY KEY,
    recon_seq   INTEGER NOT NULL REFERENCES reconciliations (seq),
    ts_ms       INTEGER NOT NULL,
    kind        TEXT NOT NULL
        CHECK (kind IN ('balance', 'open_order', 'trade', 'order_missing')),
    subject     TEXT NOT NULL,       -- the asset, the client order id or the trade id
    venue_value TEXT NOT NULL,
    book_value  TEXT NOT NULL,
    detail      TEXT NOT NULL,
    policy      TEXT NOT NULL CHECK (policy IN ('halt', 'adopt'))
);

-- @version 8
-- Live: each fill's venue trade as the venue reported it (quantity before a commission
-- taken from it, the commission exactly, its asset), and the venue's alert kinds.
ALTER TABLE fill_trades ADD COLUMN qty_e8 INTEGER;
ALTER TABLE fill_trades ADD COLUMN commission_e8 INTEGER;
ALTER TABLE fill_trades ADD COLUMN commission_asset TEXT;
CREATE TABLE alerts_v8 (
    seq        INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('bar_gap', 'error_rate', 'daily_loss_halt',
                                             'flatten_refused', 'alert_channel', 'session_died',
                                             'clock_skew', 'venue_failures', 'venue_mismatch')),
    raised_ms  INTEGER NOT NULL,
    cleared_ms INTEGER,
    msg        TEXT NOT NULL
);
INSERT INTO alerts_v8 SELECT seq, kind, raised_ms, cleared_ms, msg FROM alerts;
DROP TABLE alerts;
ALTER TABLE alerts_v8 RENAME TO alerts;

-- @version 9
-- Several symbols in one session: each minute's close and position per symbol (the
-- equity row then holds cash and equity only, close and position 0), and whose bars a
-- QC event is about ('' in a one-symbol session).
CREATE TABLE marks (
    ts_ms       INTEGER NOT NULL,
    symbol      TEXT NOT NULL,
    close_e8    INTEGER NOT NULL,
    position_e8 INTEGER NOT NULL,
    PRIMARY KEY (ts_ms, symbol)
) WITHOUT ROWID;
ALTER TABLE qc_events ADD COLUMN symbol TEXT NOT NULL DEFAULT '';
-- Several strategies in one session (`[[strategies]]`): whose each row is ('' when the
-- session has one strategy), each sleeve's account and state, its equity per minute.
ALTER TABLE runs ADD COLUMN sleeves TEXT NOT NULL DEFAULT '[]';  -- JSON: each one's identity
ALTER TABLE controls ADD COLUMN strategy_id TEXT NOT NULL DEFAULT '';  -- '' = whole session
ALTER TABLE intents ADD COLUMN strategy_id TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN strategy_id TEXT NOT NULL DEFAULT '';
ALTER TABLE fills ADD COLUMN strategy_id TEXT NOT NULL DEFAULT '';
CREATE TABLE sleeves (
    strategy_id   TEXT PRIMARY KEY,
    slot          TEXT NOT NULL,           -- the 2 characters its client order ids carry
    strategy_path TEXT NOT NULL,           -- module:Class
    allocation_e8 INTEGER NOT NULL,
    initial_e8    INTEGER NOT NULL,        -- its share of the initial cash
    halted        TEXT,                    -- why it stopped (NULL: trading)
    changed_ms    INTEGER NOT NULL DEFAULT 0,
    cash_e8       INTEGER NOT NULL,
    realised_e8   INTEGER NOT NULL,
    fees_e8       INTEGER NOT NULL,
    budget_e8     INTEGER NOT NULL
);
-- The decision log's sleeve records (a sleeve halted or resumed) and budget records (a
-- sleeve's budget for the day): the kind CHECK is rebuilt to take them.
CREATE TABLE decisions_v9 (
    seq       INTEGER PRIMARY KEY,
    bar_ts_ms INTEGER NOT NULL,
    kind      TEXT NOT NULL
        CHECK (kind IN ('intent', 'order', 'fill', 'state', 'control', 'log', 'commit',
                        'sleeve', 'budget', 'share')),
    ref       TEXT NOT NULL,
    payload   TEXT NOT NULL,  -- canonical JSON (sorted keys)
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL   -- sha256(prev_hash | kind | ref | payload)
);
INSERT INTO decisions_v9 SELECT * FROM decisions;
DROP TABLE decisions;
ALTER TABLE decisions_v9 RENAME TO decisions;
-- A net order's fill (several strategies' opposite orders on one symbol in one minute,
-- sent as one order for the difference), as each sleeve's order got it: the shares' signed
-- notionals and fees add up to the fill's exactly.
CREATE TABLE fill_shares (
    fill_id         INTEGER NOT NULL REFERENCES fills (fill_id),
    client_order_id TEXT NOT NULL REFERENCES orders (client_order_id),  -- the sleeve's order
    strategy_id     TEXT NOT NULL,
    side            TEXT NOT NULL,
    qty_e8          INTEGER NOT NULL,
    price_e8        INTEGER NOT NULL,
    notional_e8     INTEGER NOT NULL,
    fee_e8          INTEGER NOT NULL,
    PRIMARY KEY (fill_id, client_order_id)
) WITHOUT ROWID;
CREATE TABLE sleeve_equity (
    ts_ms       INTEGER NOT NULL,
    strategy_id TEXT NOT NULL,
    cash_e8     INTEGER NOT NULL,
    equity_e8   INTEGER NOT NULL,
    PRIMARY KEY (ts_ms, strategy_id)
) WITHOUT ROWID;

-- @version 10
-- Hot reload (`njord reload`): a strategy's later versions, each its code's identity (the
-- source kept when it lives outside njord, so `verify` re-runs each version on any
-- machine) and its params; a `reload` control names the version it swaps in. The
-- controls' command CHECK is rebuilt to take it.
CREATE TABLE strategy_versions (
    version     INTEGER PRIMARY KEY,
    strategy_id TEXT NOT NULL,             -- '' when the session runs one strategy
    path        TEXT NOT NULL,             -- module:Class
    sha256      TEXT NOT NULL,             -- of the defining module's source
    source      TEXT,                      -- NULL: njord's own (its hash must match)
    params      TEXT NOT NULL,             -- canonical JSON
    posted_ms   INTEGER NOT NULL,
    posted_by   TEXT NOT NULL
);
CREATE TABLE controls_v10 (
    seq         INTEGER PRIMARY KEY,
    posted_ms   INTEGER NOT NULL,
    command     TEXT NOT NULL
        CHECK (command IN ('halt', 'reduce', 'flatten', 'resume', 'reload')),
    reason      TEXT NOT NULL,
    posted_by   TEXT NOT NULL,
    applied_ms  INTEGER,
    bar_ts_ms   INTEGER,
    strategy_id TEXT NOT NULL DEFAULT '',  -- '' = whole session
    version     INTEGER REFERENCES strategy_versions (version)  -- a reload's
);
INSERT INTO controls_v10 (seq, posted_ms, command, reason, posted_by, applied_ms, bar_ts_ms,
                          strategy_id)
SELECT seq, posted_ms, command, reason, posted_by, applied_ms, bar_ts_ms, strategy_id
FROM controls;
DROP TABLE controls;
ALTER TABLE controls_v10 RENAME TO controls;
-- Paper sessions of several symbols (`data.symbols`): the paper broker's last bar per
-- symbol ('' in a one-symbol session, as its one row was).
CREATE TABLE paper_market_v10 (
    symbol TEXT PRIMARY KEY,
    bar    BLOB NOT NULL                         -- msgpack of the last bar matched
);
INSERT INTO paper_market_v10 (symbol, bar) SELECT '', bar FROM paper_market;
DROP TABLE paper_market;
ALTER TABLE paper_market_v10 RENAME TO paper_market;

PRAGMA user_version = 10;
