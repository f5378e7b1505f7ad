from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from njord import config
from njord.errors import ConfigError
from tests.conftest import SAMPLE, invoke


def _file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(body)
    return path


def test_precedence_walks_down_the_chain(tmp_path: Path) -> None:
    file = _file(tmp_path, "[risk]\nnotional_cap = 100\n")
    env = {"NJORD_RISK__NOTIONAL_CAP": "200"}
    sets = ["risk.notional_cap=300"]
    levels = [(file, env, sets, "300"), (file, env, [], "200"), (file, {}, [], "100")]
    levels.append((None, {}, [], "10000"))
    for f, e, s, expected in levels:
        loaded = config.load(file=f, env=e, sets=s)
        assert str(loaded.config.risk.notional_cap) == expected


def test_origins_are_recorded(tmp_path: Path) -> None:
    file = _file(tmp_path, "[risk]\nnotional_cap = 100\n")
    loaded = config.load(file=file, env={"NJORD_COSTS__SPREAD_BPS": "2"}, sets=[])
    assert loaded.origins["risk.notional_cap"] == f"{file}:2"
    assert loaded.origins["costs.spread_bps"] == "env NJORD_COSTS__SPREAD_BPS"
    assert loaded.origins["data.symbol"] == "default"


@pytest.mark.parametrize(
    ("body", "env", "sets", "needle"),
    [
        (
            "[risk]\nnotional_capp = 1\n",
            {},
            [],
            "risk.notional_capp (FILE:2); did you mean risk.notional_cap",
        ),
        ("", {"NJORD_RISK__NOTIONAL_CAPP": "1"}, [], "env NJORD_RISK__NOTIONAL_CAPP"),
        ("", {}, ["risk.notional_capp=1"], "--set risk.notional_capp=1"),
        ("", {}, ["risk.max_open_positions=abc"], "risk.max_open_positions: Expected `int`"),
        ("", {}, ["risk.notional_cap=-5"], "risk.notional_cap: must be > 0, got -5"),
        ("", {}, ["risk.rules_off.backtest=['nope']"], "Invalid enum value 'nope' (--set"),
    ],
)
def test_bad_keys_and_types_name_key_and_origin(
    tmp_path: Path, body: str, env: dict[str, str], sets: list[str], needle: str
) -> None:
    file = _file(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        config.load(file=file, env=env, sets=sets)
    assert needle.replace("FILE", str(file)) in str(err.value)


def test_bad_config_exits_2_and_creates_no_db(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    result = invoke("backtest", "--set", "risk.notional_capp=1", "--db", str(db), "--quiet")
    assert result.exit_code == 2
    assert "unknown config key risk.notional_capp" in result.output
    assert not db.exists()


def test_negative_cap_and_wrong_type_are_config_errors_at_start(tmp_path: Path) -> None:
    for bad in ("risk.daily_loss_limit=-1", "risk.max_orders_per_minute=1.5"):
        db = tmp_path / "s.db"
        assert invoke("backtest", "--set", bad, "--db", str(db)).exit_code == 2
        assert not db.exists()


@pytest.mark.parametrize(
    ("setting", "needle"),
    [
        ("runtime.initial_cash=nan", "runtime.initial_cash: must be a finite number, got NaN"),
        ('runtime.initial_cash="inf"', "runtime.initial_cash: must be a finite number"),
        ("risk.notional_cap=1e400", "risk.notional_cap: must be a finite number"),
        ("costs.commission_bps=inf", "costs.commission_bps: must be a finite number"),
        ("runtime.initial_cash=1e30", "runtime.initial_cash: must be at most 92233720368"),
        ("runtime.initial_cash=0.0000000001", "runtime.initial_cash: must be >= 0.00000001"),
        ("runtime.seed=99999999999999999999", "runtime.seed: must be a 64-bit integer"),
        ("strategy.params.slow=99999999999999999999", "strategy.params.slow: must be a 64-bit"),
        ("runtime.decision_latency_p99_ms=nan", "decision_latency_p99_ms: must be a finite"),
    ],
)
def test_numbers_a_session_cannot_hold_exit_2_before_any_db(
    tmp_path: Path, setting: str, needle: str
) -> None:
    """nan, inf, 1e30 of cash or a 20-digit seed used to pass the config and fail once the
    session had begun: exit 70 and a db whose stored config no longer read back."""
    db = tmp_path / "s.db"
    result = invoke("backtest", "--set", setting, "--db", str(db), "--quiet")
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1
    assert needle in result.output
    assert f"(--set {setting})" in result.output
    assert not db.exists()


def test_init_writes_every_key_and_it_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    assert invoke("init", str(path)).exit_code == 0
    loaded = config.load(file=path, env={}, sets=[])
    assert loaded.config == config.Config()
    text = path.read_text()
    for key, _ in config.leaf_items(config.Config()):
        # `strategies`, an array of tables, is shown as a commented example
        assert (f"{key.rsplit('.', 1)[1]} = " if "." in key else f"# [[{key}]]") in text
        assert config.DOCS[key]


def test_docs_cover_every_key() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    for key, _ in config.leaf_items(config.Config()):
        assert f"`{key}`" in doc, key
    assert "`risk.rules_off`" in doc


def test_config_show_names_origins(tmp_path: Path) -> None:
    result = invoke("config", "show", "--set", "costs.spread_bps=3")
    assert "costs.spread_bps" in result.output
    assert "# --set costs.spread_bps=3" in result.output


def test_carrying_a_session_on_checks_the_symbols_it_will_run_with() -> None:
    from njord import amend

    eth = config.load(
        file=None,
        env={},
        sets=['data.symbol="ETHUSDT"', 'risk.allowed_symbols=["ETHUSDT"]'],
    ).config
    # Given alone, the allow-list is checked against the session's symbol, not the default.
    given = config.load(file=None, env={}, sets=['risk.allowed_symbols=["ETHUSDT", "X"]'])
    carried, changes = amend.reconcile(eth, given.config, given.origins, session="s")
    assert carried.risk.allowed_symbols == ["ETHUSDT", "X"]
    assert changes
    dropped = config.load(file=None, env={}, sets=['risk.allowed_symbols=["BTCUSDT"]'])
    with pytest.raises(ConfigError, match=r"does not hold data\.symbol ETHUSDT"):
        amend.reconcile(eth, dropped.config, dropped.origins, session="s")


def test_toml_value_writes_inline_tables_that_read_back_the_same() -> None:
    """A resumed session names a changed `[[strategies]]` list in its refusal: a list of
    tables, written inline."""
    value = [{"id": "a", "params": {"fast": 3, "odd key": 1.5}, "symbols": ["BTCUSDT"], "x": {}}]
    text = f"k = {config.toml_value(value)}"
    assert text == (
        'k = [{ id = "a", params = { fast = 3, "odd key" = 1.5 }, symbols = ["BTCUSDT"], x = {} }]'
    )
    assert tomllib.loads(text)["k"] == value


def test_strategy_flag_keeps_the_strategy_table_for_sets(tmp_path: Path) -> None:
    """--strategy drops what the file gave the old strategy, not the keys: --set may still
    name strategy.symbols and strategy.timeframes."""
    file = _file(tmp_path, '[strategy]\nname = "sma_crossover"\ntimeframes = ["1m", "1h"]\n')
    sets = ['strategy.symbols=["BTCUSDT"]']
    loaded = config.load(file=file, env={}, sets=sets, strategy="trendline_break")
    assert loaded.config.strategy.name == "trendline_break"
    assert loaded.config.strategy.symbols == ["BTCUSDT"]
    assert loaded.config.strategy.timeframes == []  # the file's were sma_crossover's
    assert loaded.origins["strategy.timeframes"] == "default"
    assert loaded.origins["strategy.symbols"] == '--set strategy.symbols=["BTCUSDT"]'


def test_files_that_are_not_utf8_text_are_one_line_exit_2(tmp_path: Path) -> None:
    """A binary file given as a config, a grid or a faults file was a UnicodeDecodeError,
    exit 70; a byte-order mark (as Windows editors write) is read past."""
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00not text")
    for command, said in (
        (["config", "show", "--config", str(binary)], f"config file {binary}"),
        (["backtest", "--config", str(binary), "--db", str(tmp_path / "s.db")], "config file"),
        (["sweep", "--grid", str(binary), "--dir", str(tmp_path / "sweep")], f"--grid {binary}"),
        (["exchange-sim", "--data", str(SAMPLE), "--faults", str(binary)], "faults file"),
    ):
        result = invoke(*command)
        assert result.exit_code == 2, (command, result.output)
        assert result.output.startswith(f"error: {said}"), result.output
        assert result.output.endswith(" is not UTF-8 text\n")
    assert not (tmp_path / "s.db").exists()
    assert not (tmp_path / "sweep").exists()
    marked = tmp_path / "bom.toml"
    marked.write_bytes(b"\xef\xbb\xbf[runtime]\ninitial_cash = 500\n")
    assert config.load(file=marked, env={}, sets=[]).config.runtime.initial_cash == 500


def test_caps_and_limits_take_any_finite_size() -> None:
    """Only cash is stored as e8 integers: a cap of 1e12 ("no cap, in practice") is only
    compared, and stays allowed."""
    loaded = config.load(file=None, env={}, sets=["risk.notional_cap=1e12"])
    assert loaded.config.risk.notional_cap == 10**12
