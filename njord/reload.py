"""`njord reload`: a running session's strategy swapped for a new version at its next bar.

The config given is read again for the session's strategies (`[[strategies]]`, or the one
`[strategy]`), and each strategy's code is imported afresh. What a reload may change is a
strategy's params and its code; anything else of a strategy (its name, symbols,
timeframes, allocation, limits) changes what the session trades, and is refused. A
version that does not import, whose params do not validate or whose constructor raises is
refused here, and nothing is posted. Otherwise each changed strategy's new version is
stored (its source too when it lives outside njord) with a `reload` control naming it,
in one transaction; the loop swaps it in at the next bar (njord.swap).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from njord import strategies
from njord.config import Config, SleeveConfig, StrategyConfig, stored_config
from njord.errors import ConfigError
from njord.manifest import Manifest, StrategyIdentity, strategy_identity
from njord.store import controls as queue
from njord.store import db, versions
from njord.store.versions import StrategyVersion

# What a reload may change in a strategy's table; anything else is a new session.
RELOADABLE = ("params",)

Table = SleeveConfig | StrategyConfig  # a strategy's table: `[[strategies]]` or `[strategy]`


def reload(path: Path, given: Config, *, strategy_id: str, by: str) -> str:
    """Post the new versions of the session's strategies (`strategy_id`: that one only)
    that `given` and their code make; the answer says what changed and when it applies."""
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; give the session's db with --db")
    # Built and checked with no lock held: a strategy's import or constructor may take a
    # while, and the running session must not wait on it for its next bar.
    manifest, before = versions.posted(path)
    if manifest is None:
        raise ConfigError(f"{path} holds no session; nothing will apply this")
    config = stored_config(manifest.config_toml)
    if not config.store.store_bars:
        raise ConfigError(
            f"session {manifest.run_id} keeps no bars (store.store_bars = false): a new "
            "version could not be warmed on them; reload needs a session that keeps them"
        )
    made = _versions(manifest, config, given, strategy_id, before)

    def post(conn: db.Connection, _: Manifest, wall_ms: int) -> str:
        if len(versions.load(conn)) != len(before):
            raise ConfigError("another reload was posted meanwhile; run njord reload again")
        if not made:
            return "nothing to reload: every strategy's code and params are those in force"
        lines = []
        for number, (version, change) in zip(
            versions.insert(
                conn,
                [msgspec.structs.replace(v, posted_ms=wall_ms, posted_by=by) for v, _ in made],
            ),
            made,
            strict=True,
        ):
            seq = queue.post_control(
                conn,
                "reload",
                f"version {number}: {change}",
                wall_ms=wall_ms,
                by=by,
                strategy_id=version.strategy_id,
                version=number,
            )
            name = f"strategy {version.strategy_id}" if version.strategy_id else "the strategy"
            lines.append(f"{name}: version {number} ({change}) posted as control #{seq}")
        return "\n".join(lines)

    posted, when = queue.posting(path, post)
    return posted if posted.startswith("nothing") else f"{posted}\n{when}"


def _versions(
    manifest: Manifest,
    config: Config,
    given: Config,
    strategy_id: str,
    stored: list[StrategyVersion],
) -> list[tuple[StrategyVersion, str]]:
    """The new version of each strategy that changed, and what changed in it."""
    ran = _strategies(config)
    now = _strategies(given)
    if bool(config.strategies) != bool(given.strategies):
        runs = "several strategies ([[strategies]])" if config.strategies else "one ([strategy])"
        raise ConfigError(f"session {manifest.run_id} runs {runs}; so must the config")
    if strategy_id and strategy_id not in ran:
        shown = ", ".join(ran) if config.strategies else "one strategy, no sleeves"
        raise ConfigError(
            f"session {manifest.run_id} has no strategy {strategy_id!r}: it runs {shown}"
        )
    identities = manifest.sleeves or [manifest.strategy]
    made = []
    for (sid, first), identity in zip(ran.items(), identities, strict=True):
        if strategy_id and sid != strategy_id:
            continue
        table = now.get(sid)
        if table is None:
            raise ConfigError(
                f"the config has no enabled [[strategies]] with id = {sid!r}; a reload keeps "
                "every strategy the session runs"
            )
        _check_same(sid, first, table)
        later = [v for v in stored if v.strategy_id == sid]
        current_identity = later[-1].identity if later else identity
        current_params = later[-1].params if later else dict(first.params)
        new_identity, params = _built(sid, table)
        change = _change(current_identity, current_params, new_identity, params)
        if change:
            version = StrategyVersion(
                version=0,
                strategy_id=sid,
                identity=new_identity,
                params=params,
                posted_ms=0,
                posted_by="",
            )
            made.append((version, change))
    return made


def _strategies(config: Config) -> dict[str, Table]:
    """Each enabled strategy by id ('' for the session's only one), in config order."""
    if not config.strategies:
        return {"": config.strategy}
    return {s.id: s for s in config.strategies if s.enabled}


def _check_same(sid: str, ran: Table, now: Table) -> None:
    before, after = msgspec.to_builtins(ran), msgspec.to_builtins(now)
    table = f"strategies {sid}" if sid else "strategy"
    changed = sorted(
        k for k in set(before) | set(after) if k not in RELOADABLE and before.get(k) != after.get(k)
    )
    if changed:
        shown = ", ".join(f"{table}.{k}" for k in changed)
        raise ConfigError(
            f"reload changes a strategy's params and code only; {shown} changed, which "
            "changes what the session trades: start a new session for that"
        )


def _built(sid: str, table: Table) -> tuple[StrategyIdentity, dict[str, Any]]:
    """The strategy's code as it is now, checked as a session start checks it."""
    name = f"strategy {sid}" if sid else "the strategy"
    cls = strategies.resolve(table.name)
    identity = strategy_identity(cls)
    try:
        # From the source as it is now: a process that imported the module before (the
        # TUI's, driving the session) would otherwise check the code it imported then.
        if identity.source is not None:
            cls = strategies.from_source(identity)
    except Exception as e:  # the new source does not run: one line, exit 2, nothing posted
        raise ConfigError(f"{name} ({table.name}) does not load: {type(e).__name__}: {e}") from e
    params = strategies.parse_params(cls, dict(table.params))
    try:
        cls(params)
    except Exception as e:  # the user's constructor: one line, exit 2, nothing posted
        raise ConfigError(f"{name} ({table.name}) raised building: {e!r}") from e
    return identity, dict(table.params)


def _change(
    old: StrategyIdentity, old_params: dict[str, Any], new: StrategyIdentity, params: dict[str, Any]
) -> str:
    """What differs, for the control's reason and the answer ('' when nothing does)."""
    parts = []
    if new.sha256 != old.sha256:
        parts.append(f"code sha256 {old.sha256[:12]} -> {new.sha256[:12]}")
    for key in sorted(set(old_params) | set(params)):
        if old_params.get(key) != params.get(key):
            parts.append(f"{key} {old_params.get(key, 'default')} -> {params.get(key, 'default')}")
    return ", ".join(parts)
