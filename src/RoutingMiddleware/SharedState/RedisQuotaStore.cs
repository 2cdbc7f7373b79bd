using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using ModelRouting.Quotas;
using StackExchange.Redis;

namespace ModelRouting.SharedState;

/// <summary>
/// Rate limits counted in Redis, so replicas share them (SPEC §16): one server-side script per admission checks
/// and takes every scope at once (all or nothing), on Redis's clock (<c>TIME</c> in the script), with the same
/// sliding window as <see cref="SlidingWindow"/>: quarter-second slots (hash fields) that leave the window 60 to
/// 60.25 s after they were added; a reservation is corrected later in its own slot. Concurrency is a counter per
/// scope with a safety TTL, refreshed on each admission, so slots held by a replica that died are freed once the
/// scope has been idle that long.
/// </summary>
/// <remarks>
/// While Redis is unavailable (the connection's circuit breaker is open) admissions are decided in this process
/// at each limit divided by <see cref="Configuration.RedisOptions.Replicas"/>, counting this replica's own admissions
/// of the last minute (those made in Redis are mirrored there), or refused when
/// <see cref="Configuration.RedisOptions.FailClosed"/>; each such decision is counted and logged once per interval.
/// </remarks>
internal sealed class RedisQuotaStore : IQuotaStore
{
    /// <summary>How long an idle scope's concurrency count lives.</summary>
    public static readonly TimeSpan ConcurrencyTtl = TimeSpan.FromMinutes(5);

    // KEYS: per scope, its requests window, tokens window and concurrency count.
    // ARGV: tokens, concurrency TTL (ms), then per scope: requests/min, tokens/min, max concurrent (-1: none).
    // Returns {1, now, snapshot...} or {0, scope, reason, retry ms, used, snapshot...}; snapshot is
    // limit, remaining, reset (ms) for requests then tokens (limit -1: none).
    // A window is a hash: one field per quarter-second slot (its amount), plus 'sum' (the amount in the window),
    // 'exp' (every slot up to it has been removed) and 'last' (the newest slot added to). Expiring walks only the
    // slots that left since the last admission, so an admission costs the same however busy the window is; only a
    // refusal reads the whole window, to say when the request would fit.
    private const string WindowFunctions = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local slot = math.floor(now / 250)
        local oldest = slot - 240
        local function f(n) return string.format('%d', n) end
        local function load(key)
          local meta = redis.call('HMGET', key, 'sum', 'exp', 'last')
          local w = { key = key, sum = tonumber(meta[1] or '0'), exp = tonumber(meta[2] or f(oldest - 1)), last = tonumber(meta[3] or '-1') }
          if w.exp < oldest - 1 then
            for s = w.exp + 1, oldest - 1 do
              local a = redis.call('HGET', key, f(s))
              if a then
                w.sum = w.sum - tonumber(a)
                redis.call('HDEL', key, f(s))
              end
            end
            w.exp = oldest - 1
            redis.call('HSET', key, 'sum', f(w.sum), 'exp', f(w.exp))
          end
          return w
        end
        local function untilEmpty(w)
          if w.sum <= 0 or w.last < oldest then return 0 end
          return (w.last + 241) * 250 - now
        end
        local function untilAtMost(w, allowed)
          local excess = w.sum - allowed
          if excess <= 0 then return 0 end
          local all = redis.call('HGETALL', w.key)
          local slots = {}
          for i = 1, #all, 2 do
            local s = tonumber(all[i])
            if s and s >= oldest then slots[#slots + 1] = { s, tonumber(all[i + 1]) } end
          end
          table.sort(slots, function(x, y) return x[1] < y[1] end)
          for _, p in ipairs(slots) do
            excess = excess - p[2]
            if excess <= 0 then return (p[1] + 241) * 250 - now end
          end
          return 60000
        end
        local function add(w, amount)
          redis.call('HINCRBY', w.key, f(slot), amount)
          w.sum = w.sum + amount
          w.last = slot
          redis.call('HSET', w.key, 'sum', f(w.sum), 'exp', f(w.exp), 'last', f(slot))
          redis.call('PEXPIRE', w.key, 61000)
        end
        """;

    // KEYS: per scope, its requests window, tokens window and concurrency count.
    // ARGV: tokens, concurrency TTL (ms), then per scope: requests/min, tokens/min, max concurrent (-1: none).
    // Returns {1, now, snapshot...} or {0, scope, reason, retry ms, used, snapshot...}; snapshot is
    // limit, remaining, reset (ms) for requests then tokens (limit -1: none).
    private const string AdmitScript = WindowFunctions + "\n" + """
        local tokens = tonumber(ARGV[1])
        local n = #KEYS / 3
        local scopes = {}
        for i = 1, n do
          scopes[i] = { r = load(KEYS[3 * i - 2]), t = load(KEYS[3 * i - 1]),
            rpm = tonumber(ARGV[3 * i]), tpm = tonumber(ARGV[3 * i + 1]), conc = tonumber(ARGV[3 * i + 2]) }
        end
        local function snapshot(result)
          local lr, rr, sr, lt, rt, st = -1, -1, 0, -1, -1, 0
          for i = 1, n do
            local s = scopes[i]
            if s.rpm >= 0 then
              local rem = math.max(0, s.rpm - s.r.sum)
              if rr < 0 or rem < rr then lr, rr, sr = s.rpm, rem, untilEmpty(s.r) end
            end
            if s.tpm >= 0 then
              local rem = math.max(0, s.tpm - s.t.sum)
              if rt < 0 or rem < rt then lt, rt, st = s.tpm, rem, untilEmpty(s.t) end
            end
          end
          for _, v in ipairs({ lr, rr, sr, lt, rt, st }) do result[#result + 1] = v end
          return result
        end
        for i = 1, n do
          local s = scopes[i]
          if s.conc >= 0 then
            local inflight = tonumber(redis.call('GET', KEYS[3 * i]) or '0')
            if inflight >= s.conc then return snapshot({ 0, i, 1, 1000, inflight }) end
          end
          if s.rpm >= 0 and s.r.sum + 1 > s.rpm then
            return snapshot({ 0, i, 2, untilAtMost(s.r, s.rpm - 1), s.r.sum })
          end
          if s.tpm >= 0 then
            if tokens > s.tpm then return snapshot({ 0, i, 3, 60000, tokens }) end
            if s.t.sum + tokens > s.tpm then
              return snapshot({ 0, i, 4, untilAtMost(s.t, s.tpm - tokens), s.t.sum })
            end
          end
        end
        for i = 1, n do
          local s = scopes[i]
          add(s.r, 1)
          add(s.t, tokens)
          if s.conc >= 0 then
            redis.call('INCR', KEYS[3 * i])
            redis.call('PEXPIRE', KEYS[3 * i], ARGV[2])
          end
        end
        return snapshot({ 1, now })
        """;

    // KEYS: per scope, its tokens window and concurrency count. ARGV: reserved at (ms), token delta, then per scope 1
    // when it holds a concurrency slot. A slot that has left the window is not corrected: nothing of it counts.
    private const string CompleteScript = """
        local function f(n) return string.format('%d', n) end
        local slot = f(math.floor(tonumber(ARGV[1]) / 250))
        local delta = tonumber(ARGV[2])
        for i = 1, #KEYS / 2 do
          if delta ~= 0 then
            local a = redis.call('HGET', KEYS[2 * i - 1], slot)
            if a then
              local corrected = math.max(0, tonumber(a) + delta)
              redis.call('HSET', KEYS[2 * i - 1], slot, f(corrected))
              redis.call('HINCRBY', KEYS[2 * i - 1], 'sum', f(corrected - tonumber(a)))
            end
          end
          if ARGV[2 + i] == '1' then
            local c = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
            if c > 0 then redis.call('DECR', KEYS[2 * i]) end
          end
        end
        return 1
        """;

    private readonly RedisConnection _connection;
    private readonly InProcessQuotaStore _fallback;
    private readonly QuotaFallbackReport _report;
    private readonly ConcurrentDictionary<string, RedisKey[]> _keys = new(StringComparer.Ordinal);
    private readonly string _prefix;

    public RedisQuotaStore(RedisConnection connection, TimeProvider time, ILogger<RedisQuotaStore> logger)
    {
        _connection = connection;
        _fallback = new InProcessQuotaStore(time);
        _report = new QuotaFallbackReport(logger, time);
        _prefix = connection.Options.KeyPrefix + "q:";
    }

    public async ValueTask<QuotaDecision> AdmitAsync(QuotaRequest request, CancellationToken cancellationToken)
    {
        if (_connection.TryDatabase() is { } database)
        {
            try
            {
                var decision = await AdmitSharedAsync(database, request);
                _connection.Succeeded();
                if (decision.Admitted)
                {
                    await MirrorAsync(request, cancellationToken);
                }

                return decision;
            }
            catch (Exception e) when (RedisConnection.IsUnavailable(e))
            {
                _connection.Failed(e.GetType().Name);
            }
        }

        return await FallBackAsync(request, cancellationToken);
    }

    public ValueTask CompleteAsync(QuotaLease lease, long usedTokens)
    {
        if (!lease.Shared)
        {
            return _fallback.CompleteAsync(lease, usedTokens);
        }

        return Interlocked.Exchange(ref lease.Completed, 1) != 0 ? ValueTask.CompletedTask : CompleteSharedAsync(lease, usedTokens);
    }

    private async Task<QuotaDecision> AdmitSharedAsync(IDatabase database, QuotaRequest request)
    {
        var count = (request.Key is null ? 0 : 1) + (request.Endpoint is null ? 0 : 1);
        var keys = new RedisKey[count * 3];
        var values = new RedisValue[2 + (count * 3)];
        values[0] = request.Tokens;
        values[1] = (long)ConcurrencyTtl.TotalMilliseconds;
        var index = 0;
        foreach (var scope in Scopes(request))
        {
            Keys(scope.Id).CopyTo(keys, index * 3);
            values[2 + (index * 3)] = scope.Limits.RequestsPerMinute ?? -1;
            values[3 + (index * 3)] = scope.Limits.TokensPerMinute ?? -1;
            values[4 + (index * 3)] = scope.Limits.MaxConcurrent ?? -1;
            index++;
        }

        var result = (long[])(await database.ScriptEvaluateAsync(AdmitScript, keys, values))!;
        if (result[0] == 1)
        {
            return new QuotaDecision(new QuotaLease(request, result[1]) { Shared = true }, null, null, TimeSpan.Zero, Snapshot(result, 2));
        }

        var refused = Scopes(request).ElementAt((int)result[1] - 1);
        var (kind, reason) = Describe(refused, (int)result[2], result[4], request.Tokens);
        return new QuotaDecision(null, kind, reason, TimeSpan.FromMilliseconds(result[3]), Snapshot(result, 5));
    }

    private async ValueTask CompleteSharedAsync(QuotaLease lease, long usedTokens)
    {
        var request = lease.Request;
        var scopes = Scopes(request).ToArray();
        var keys = new RedisKey[scopes.Length * 2];
        var values = new RedisValue[2 + scopes.Length];
        values[0] = lease.ReservedAt;
        values[1] = usedTokens - request.Tokens;
        for (var i = 0; i < scopes.Length; i++)
        {
            var scopeKeys = Keys(scopes[i].Id);
            keys[2 * i] = scopeKeys[1];
            keys[(2 * i) + 1] = scopeKeys[2];
            values[2 + i] = scopes[i].Limits.MaxConcurrent is null ? 0 : 1;
        }

        // A completion is not skipped while the breaker is open: it frees a slot another replica may be waiting for.
        // If Redis does not answer, the correction is lost and the slot is freed by the counter's TTL. (Sending it
        // fire-and-forget was tried once and a 3/min key admitted 4 across two replicas; that was probably the
        // start-up breaker bug fixed since in SharedOverlaySync, but it has not been tried again.)
        try
        {
            await _connection.Multiplexer!.GetDatabase().ScriptEvaluateAsync(CompleteScript, keys, values);
        }
        catch (Exception e) when (RedisConnection.IsUnavailable(e))
        {
            _connection.Failed(e.GetType().Name);
        }
    }

    // Counts an admission made in Redis in this replica's own share (limit ÷ replicas) too, so a fallback after a short
    // outage or a timeout starts from what this replica admitted in the last minute, not from zero: without it, every
    // blip would let each replica admit its whole share again on top of what Redis admitted.
    private async ValueTask MirrorAsync(QuotaRequest request, CancellationToken cancellationToken)
    {
        var replicas = Math.Max(1, _connection.Options.Replicas);
        var local = await _fallback.AdmitAsync(request with { Key = Divide(request.Key, replicas), Endpoint = Divide(request.Endpoint, replicas) }, cancellationToken);
        if (local.Lease is { } lease)
        {
            await _fallback.CompleteAsync(lease, request.Tokens); // the count only: no concurrency slot is held here
        }
    }

    private ValueTask<QuotaDecision> FallBackAsync(QuotaRequest request, CancellationToken cancellationToken)
    {
        var options = _connection.Options;
        _report.Record(options.FailClosed);
        if (options.FailClosed)
        {
            return ValueTask.FromResult(new QuotaDecision(
                null, "requests", "Rate limits cannot be checked: the shared state (Redis) is unavailable and ModelRouting:Redis:FailClosed is true.",
                options.BreakDuration, default));
        }

        var replicas = Math.Max(1, options.Replicas);
        return _fallback.AdmitAsync(request with { Key = Divide(request.Key, replicas), Endpoint = Divide(request.Endpoint, replicas) }, cancellationToken);
    }

    private static QuotaScope? Divide(QuotaScope? scope, int replicas)
    {
        if (scope is null || replicas == 1)
        {
            return scope;
        }

        var limits = scope.Limits;
        return scope with
        {
            Limits = new RateLimits(
                limits.RequestsPerMinute is { } rpm ? Math.Max(1, rpm / replicas) : null,
                limits.TokensPerMinute is { } tpm ? Math.Max(1, tpm / replicas) : null,
                limits.MaxConcurrent is { } concurrent ? Math.Max(1, concurrent / replicas) : null),
        };
    }

    private static IEnumerable<QuotaScope> Scopes(QuotaRequest request)
    {
        if (request.Key is { } key)
        {
            yield return key;
        }

        if (request.Endpoint is { } endpoint)
        {
            yield return endpoint;
        }
    }

    private RedisKey[] Keys(string scopeId) => _keys.GetOrAdd(scopeId, static (id, prefix) =>
        [prefix + id + ":r", prefix + id + ":t", prefix + id + ":c"], _prefix);

    private static (string Kind, string Reason) Describe(QuotaScope scope, int reason, long used, long tokens) => reason switch
    {
        1 => ("requests", $"Rate limit reached for {scope.Id}: {scope.Limits.MaxConcurrent} concurrent requests."),
        2 => ("requests", $"Rate limit reached for {scope.Id} on requests per minute: limit {scope.Limits.RequestsPerMinute}, used {used}."),
        3 => ("tokens", $"Request too large for {scope.Id} on tokens per minute: limit {scope.Limits.TokensPerMinute}, requested {tokens} (prompt estimate + output budget)."),
        _ => ("tokens", $"Rate limit reached for {scope.Id} on tokens per minute: limit {scope.Limits.TokensPerMinute}, used {used}, requested {tokens}."),
    };

    private static RateLimitSnapshot Snapshot(long[] result, int at)
    {
        long? limitRequests = result[at] < 0 ? null : result[at];
        long? limitTokens = result[at + 3] < 0 ? null : result[at + 3];
        return new RateLimitSnapshot(
            limitRequests, limitRequests is null ? 0 : result[at + 1], TimeSpan.FromMilliseconds(result[at + 2]),
            limitTokens, limitTokens is null ? 0 : result[at + 4], TimeSpan.FromMilliseconds(result[at + 5]));
    }
}
