"""The only code that talks to Azure: ARM reads and writes, Log Analytics queries, the
ledger in Table Storage, the containment queue, and the clients behind them. Adapters read
and write; they never decide."""
