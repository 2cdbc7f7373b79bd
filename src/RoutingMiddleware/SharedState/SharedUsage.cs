using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ModelRouting.Quotas;
using StackExchange.Redis;

namespace ModelRouting.SharedState;

/// <summary>
/// Usage per key and per endpoint over every replica (SPEC §14, §16): each replica writes its own totals (since it
/// started) to Redis every second, and <c>GET /admin/usage</c> adds up every replica's. A replica's totals are
/// written whole (<c>HSET</c> of absolute values, in fields named after the replica), never added as increments:
/// a write that timed out and is written again cannot count anything twice. Only what changed is written, except
/// that everything is written again every 30 s and after any failure, so totals lost in Redis (a restart without
/// persistence, an eviction) come back. A replica that stops writes its last totals and folds them into the
/// <c>base</c> fields by a script (idempotent: a fold retried finds nothing left to fold); those of a replica that
/// died stay under its name, still counted (it loses at most its last second). The request path never waits on
/// Redis: it counts in the process's <see cref="UsageLedger"/>.
/// </summary>
internal sealed class SharedUsage(UsageLedger ledger, RedisConnection connection, ILogger<SharedUsage> logger) : BackgroundService
{
    /// <summary>How often a replica writes its totals.</summary>
    internal static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private const int FullWriteEvery = 30;
    private const long LogEveryMilliseconds = 10_000;
    private static readonly string[] s_fields = ["requests", "prompt_tokens", "completion_tokens", "requests_without_usage"];

    // KEYS[1]: a usage hash; ARGV[1]: the replica; ARGV[2..]: the fields. Moves the replica's fields into the base fields.
    private const string FoldScript = """
        for i = 2, #ARGV do
          local field = ARGV[i]
          local value = redis.call('HGET', KEYS[1], ARGV[1] .. ':' .. field)
          if value then
            redis.call('HINCRBY', KEYS[1], 'base:' .. field, value)
            redis.call('HDEL', KEYS[1], ARGV[1] .. ':' .. field)
          end
        end
        return 0
        """;

    private readonly string _replica = Guid.NewGuid().ToString("N")[..16];
    private readonly string _prefix = connection.Options.KeyPrefix + "usage:";
    private readonly Dictionary<string, UsageCounts> _written = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _writing = new(1, 1);
    private int _ticks;
    private long _loggedAt;

    /// <summary>Gets whether usage is shared (Redis is configured).</summary>
    public bool Enabled => connection.Enabled;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (connection.Multiplexer is not { } multiplexer)
        {
            return;
        }

        multiplexer.ConnectionRestored += (_, _) => Forget();
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                if (++_ticks % FullWriteEvery == 0)
                {
                    Forget();
                }

                await WriteAsync();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (connection.Enabled && await WriteAsync())
        {
            await FoldAsync();
        }
    }

    public override void Dispose()
    {
        _writing.Dispose();
        base.Dispose();
    }

    /// <summary>Writes this replica's totals that changed since the last write; false when Redis could not be asked.</summary>
    public async Task<bool> WriteAsync()
    {
        if (Database() is not { } database)
        {
            Forget(); // Redis may come back without what it held
            return false;
        }

        await _writing.WaitAsync();
        try
        {
            var changed = new List<(string Kind, string Id, UsageCounts Counts)>();
            Collect(changed, "key", ledger.Keys);
            Collect(changed, "endpoint", ledger.Endpoints);
            if (changed.Count == 0)
            {
                return true;
            }

            var batch = database.CreateBatch();
            var writes = new List<Task>(changed.Count * 2);
            foreach (var (kind, id, counts) in changed)
            {
                writes.Add(batch.HashSetAsync(_prefix + kind + ":" + id,
                [
                    new(_replica + ":" + s_fields[0], counts.Requests),
                    new(_replica + ":" + s_fields[1], counts.PromptTokens),
                    new(_replica + ":" + s_fields[2], counts.CompletionTokens),
                    new(_replica + ":" + s_fields[3], counts.RequestsWithoutUsage),
                ]));
                writes.Add(batch.SetAddAsync(_prefix + kind + "s", id));
            }

            batch.Execute();
            await Task.WhenAll(writes);
            foreach (var (kind, id, counts) in changed)
            {
                _written[kind + ":" + id] = counts;
            }

            return true;
        }
        catch (Exception e)
        {
            Failed(e, "written to");
            return false;
        }
        finally
        {
            _writing.Release();
        }
    }

    /// <summary>
    /// Every replica's totals added up, per key and per endpoint, after writing this replica's own (so what it has
    /// served is in them); null when Redis could not be asked.
    /// </summary>
    public async Task<(Dictionary<string, UsageCounts> Keys, Dictionary<string, UsageCounts> Endpoints)?> ReadAsync()
    {
        if (!await WriteAsync() || Database() is not { } database)
        {
            return null;
        }

        try
        {
            return (await ReadAsync(database, "key"), await ReadAsync(database, "endpoint"));
        }
        catch (Exception e)
        {
            Failed(e, "read from");
            return null;
        }
    }

    private async Task FoldAsync()
    {
        if (Database() is not { } database)
        {
            return;
        }

        try
        {
            List<string> hashes;
            await _writing.WaitAsync();
            try
            {
                hashes = [.. _written.Keys.Select(name => _prefix + name)];
            }
            finally
            {
                _writing.Release();
            }

            RedisValue[] arguments = [_replica, .. s_fields];
            await Task.WhenAll(hashes.Select(hash => database.ScriptEvaluateAsync(FoldScript, [hash], arguments)));
        }
        catch (Exception e)
        {
            Failed(e, "folded in");
        }
    }

    // Redis while the connection's breaker lets it be asked. The writer never opens or closes the breaker itself: it
    // protects the request path, and a background write that fails is simply made again on the next tick.
    private IDatabase? Database() => connection.IsAvailable ? connection.Multiplexer!.GetDatabase() : null;

    // Redis down is retried on the next tick; any other error (out of memory, a denied command) is logged too. The
    // next write writes everything again. Neither stops the gateway.
    private void Failed(Exception e, string action)
    {
        Forget();
        if (RedisConnection.IsUnavailable(e))
        {
            return;
        }

        if (Environment.TickCount64 - Volatile.Read(ref _loggedAt) >= LogEveryMilliseconds || Volatile.Read(ref _loggedAt) == 0)
        {
            Volatile.Write(ref _loggedAt, Environment.TickCount64);
            SharedStateLog.UsageFailed(logger, action, e.Message); // at most once per 10 s: it is retried every second
        }
    }

    // The next write writes every total, not only those that changed.
    private void Forget()
    {
        if (_writing.Wait(0))
        {
            _written.Clear();
            _writing.Release();
        }
        else
        {
            _ticks = FullWriteEvery - 1; // a write is under way: the next tick writes everything
        }
    }

    private async Task<Dictionary<string, UsageCounts>> ReadAsync(IDatabase database, string kind)
    {
        var ids = await database.SetMembersAsync(_prefix + kind + "s");
        var reads = ids.Select(id => (Id: (string)id!, Fields: database.HashGetAllAsync(_prefix + kind + ":" + id))).ToList();
        await Task.WhenAll(reads.Select(r => r.Fields));
        var totals = new Dictionary<string, UsageCounts>(StringComparer.Ordinal);
        foreach (var (id, fields) in reads)
        {
            var sums = new long[s_fields.Length];
            foreach (var field in fields.Result)
            {
                // <replica>:<field> or base:<field>
                var name = (string)field.Name!;
                var index = Array.IndexOf(s_fields, name[(name.IndexOf(':', StringComparison.Ordinal) + 1)..]);
                if (index >= 0 && field.Value.TryParse(out long value))
                {
                    sums[index] += value;
                }
            }

            totals[id] = new UsageCounts(sums[0], sums[1], sums[2], sums[3]);
        }

        return totals;
    }

    private void Collect(List<(string, string, UsageCounts)> changed, string kind, IEnumerable<KeyValuePair<string, UsageTotals>> totals)
    {
        foreach (var (id, total) in totals)
        {
            var counts = UsageCounts.Of(total);
            if (!_written.TryGetValue(kind + ":" + id, out var written) || written != counts)
            {
                changed.Add((kind, id, counts));
            }
        }
    }
}
