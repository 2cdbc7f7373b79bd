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
/// <para>
/// A busy scope is not asked about in Redis for every request: the admission script also grants this replica an
/// allotment (some requests, tokens and concurrent slots, at most what is left divided by 4 × replicas), counted in
/// Redis at once, from which requests are admitted here until its quarter-second slot ends; what is left is then
/// given back in that slot. So the replicas together never admit more than a limit, and near one the allotments
/// shrink to nothing and every admission is decided in Redis again. Completions (token corrections, freed slots)
/// are sent in the background, batched.
/// </para>
/// <para>
/// While Redis is unavailable (the connection's circuit breaker is open) admissions are decided in this process
/// at each limit divided by <see cref="Configuration.RedisOptions.Replicas"/>, counting this replica's own admissions
/// of the last minute (each one made through Redis is counted there too, so a fallback after a blip does not start
/// from zero and let each replica admit its whole share again), or refused when
/// <see cref="Configuration.RedisOptions.FailClosed"/>; each such decision is counted and logged once per interval.
/// </para>
/// </remarks>
internal sealed class RedisQuotaStore : IQuotaStore, IDisposable
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
        local function add(w, amount, at)
          at = at or slot
          redis.call('HINCRBY', w.key, f(at), amount)
          w.sum = w.sum + amount
          if at > w.last then w.last = at end
          redis.call('HSET', w.key, 'sum', f(w.sum), 'exp', f(w.exp), 'last', f(w.last))
          redis.call('PEXPIRE', w.key, 61000)
        end
        """;

    // KEYS: per scope, its requests window, tokens window and concurrency count.
    // ARGV: tokens, concurrency TTL (ms), divisor, then per scope: requests/min, tokens/min, max concurrent (-1: none),
    // and the allotment wanted of each (requests, tokens, concurrent slots; 0: none).
    // Admitted: {1, now, the allotments' slot, then per scope: requests in window, its reset (ms), tokens in window, its reset (ms),
    // requests in flight, allotment granted of requests, tokens, slots}. Refused: {0, scope, reason, retry ms, used,
    // snapshot}; the snapshot is limit, remaining, reset (ms) for requests then tokens (limit -1: none).
    // Only limited kinds are counted. An allotment is granted only from what is left after this request, at most that
    // remainder divided by the divisor, so that no replica can hold more than its share of what is left.
    private const string AdmitScript = WindowFunctions + "\n" + """
        local tokens = tonumber(ARGV[1])
        local divisor = tonumber(ARGV[3])
        local n = #KEYS / 3
        local scopes = {}
        for i = 1, n do
          local a = 3 + 6 * (i - 1)
          local s = { rpm = tonumber(ARGV[a + 1]), tpm = tonumber(ARGV[a + 2]), conc = tonumber(ARGV[a + 3]),
            wr = tonumber(ARGV[a + 4]), wt = tonumber(ARGV[a + 5]), wc = tonumber(ARGV[a + 6]), inflight = 0 }
          s.r = s.rpm >= 0 and load(KEYS[3 * i - 2]) or { sum = 0, last = -1 }
          s.t = s.tpm >= 0 and load(KEYS[3 * i - 1]) or { sum = 0, last = -1 }
          if s.conc >= 0 then s.inflight = tonumber(redis.call('GET', KEYS[3 * i]) or '0') end
          scopes[i] = s
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
          if s.conc >= 0 and s.inflight >= s.conc then return snapshot({ 0, i, 1, 1000, s.inflight }) end
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
        local function share(wanted, limit, used)
          if wanted <= 0 or limit < 0 then return 0 end
          return math.max(0, math.min(wanted, math.floor((limit - used) / divisor)))
        end
        -- An allotment taken in the last 50 ms of a slot is counted in the next one (later, never sooner) and lasts
        -- through it, so it is not given back as soon as it arrives.
        local lslot = slot
        if (slot + 1) * 250 - now < 50 then lslot = slot + 1 end
        local result = { 1, now, lslot }
        for i = 1, n do
          local s = scopes[i]
          local gr = share(s.wr, s.rpm, s.r.sum + 1)
          local gt = share(s.wt, s.tpm, s.t.sum + tokens)
          local gc = share(s.wc, s.conc, s.inflight + 1)
          if s.rpm >= 0 then
            add(s.r, 1)
            if gr > 0 then add(s.r, gr, lslot) end
          end
          if s.tpm >= 0 then
            add(s.t, tokens)
            if gt > 0 then add(s.t, gt, lslot) end
          end
          if s.conc >= 0 then
            s.inflight = redis.call('INCRBY', KEYS[3 * i], 1 + gc)
            redis.call('PEXPIRE', KEYS[3 * i], ARGV[2])
          end
          for _, v in ipairs({ s.r.sum, untilEmpty(s.r), s.t.sum, untilEmpty(s.t), s.inflight, gr, gt, gc }) do
            result[#result + 1] = v
          end
        end
        return result
        """;

    // KEYS: windows and concurrency counts. ARGV: per key, the slot to correct (-1: a concurrency count) and the delta.
    // A slot that has left the window is not corrected: nothing of it counts any more. A count does not go below 0.
    private const string FlushScript = """
        local function f(n) return string.format('%d', n) end
        for i = 1, #KEYS do
          local slot = tonumber(ARGV[2 * i - 1])
          local delta = tonumber(ARGV[2 * i])
          if slot < 0 then
            if redis.call('INCRBY', KEYS[i], delta) <= 0 then redis.call('DEL', KEYS[i]) end
          else
            local a = redis.call('HGET', KEYS[i], f(slot))
            if a then
              local corrected = math.max(0, tonumber(a) + delta)
              redis.call('HSET', KEYS[i], f(slot), f(corrected))
              redis.call('HINCRBY', KEYS[i], 'sum', f(corrected - tonumber(a)))
            end
          end
        end
        return 1
        """;

    /// <summary>Admissions a scope must see in a quarter second before this replica takes an allotment for it.</summary>
    internal const int AllotmentDemand = 4;

    // An allotment is given back this long before its slot ends by this replica's reckoning of Redis's clock, so a
    // request admitted from it is never counted in a slot that has already ended.
    private const long AllotmentMargin = 25;

    // How long corrections gather before they are sent (one script for all of them).
    private static readonly TimeSpan FlushDelay = TimeSpan.FromMilliseconds(20);

    private static readonly RateLimits Unlimited = new(null, null, null);

    private readonly RedisConnection _connection;
    private readonly InProcessQuotaStore _fallback;
    private readonly QuotaFallbackReport _report;
    private readonly ConcurrentDictionary<string, ScopeState> _scopes = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly long _start;
    private readonly string _prefix;
    private readonly Timer _returns;
    private readonly SemaphoreSlim _urgent = new(0, 1);
    private Dictionary<(string Key, long Slot), long> _pending = [];
    private TaskCompletionSource? _flushing; // set while a flush loop runs; completed when it has sent everything

    public RedisQuotaStore(RedisConnection connection, TimeProvider time, ILogger<RedisQuotaStore> logger)
    {
        _connection = connection;
        _time = time;
        _start = time.GetTimestamp();
        _fallback = new InProcessQuotaStore(time);
        _report = new QuotaFallbackReport(logger, time);
        _prefix = connection.Options.KeyPrefix + "q:";
        _returns = new Timer(static state => ((RedisQuotaStore)state!).ReturnExpired(), this, SlidingWindow.SlotMilliseconds, SlidingWindow.SlotMilliseconds);
    }

    private long Now => (long)_time.GetElapsedTime(_start).TotalMilliseconds;

    /// <summary>Gets how many requests were admitted from allotments, without asking Redis.</summary>
    internal long AdmittedFromAllotments { get; private set; }

    public async ValueTask<QuotaDecision> AdmitAsync(QuotaRequest request, CancellationToken cancellationToken)
    {
        if (_connection.TryDatabase() is { } database)
        {
            try
            {
                var decision = await AdmitSharedAsync(database, request);
                if (decision.Admitted)
                {
                    _fallback.Count(request);
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

        if (Interlocked.Exchange(ref lease.Completed, 1) != 0)
        {
            return ValueTask.CompletedTask;
        }

        // Sent in the background, batched with other completions (a completion is not skipped while the breaker is
        // open: it frees a slot another replica may be waiting for). If Redis does not answer, the correction is
        // lost and a concurrency slot is freed by the count's TTL.
        var request = lease.Request;
        var delta = usedTokens - request.Tokens;
        bool freed;
        lock (_lock)
        {
            var now = Now;
            freed = Give(request.Key, lease.ReservedAt, delta, now);
            if (lease.EndpointReleased == 0)
            {
                freed |= Give(request.Endpoint, lease.EndpointReservedAt, delta, now);
            }
        }

        Flush(urgent: freed);
        return ValueTask.CompletedTask;
    }

    public ValueTask ReleaseEndpointAsync(QuotaLease lease)
    {
        if (!lease.Shared)
        {
            return _fallback.ReleaseEndpointAsync(lease);
        }

        if (lease.Request.Endpoint is null)
        {
            return ValueTask.CompletedTask;
        }

        var freed = false;
        lock (_lock)
        {
            // Under the lock, as the completion's reading of EndpointReleased: one of the two gives the endpoint back.
            if (lease.Completed == 0 && lease.EndpointReleased == 0)
            {
                lease.EndpointReleased = 1;
                freed = Give(lease.Request.Endpoint, lease.EndpointReservedAt, -lease.Request.Tokens, Now);
            }
        }

        Flush(urgent: freed);
        return ValueTask.CompletedTask;
    }

    /// <summary>Waits until every correction and returned allotment so far has been sent to Redis (for tests).</summary>
    internal Task FlushedAsync()
    {
        lock (_lock)
        {
            return _flushing?.Task ?? Task.CompletedTask;
        }
    }

    /// <summary>Gives back every allotment now, as if its slot had ended (for tests).</summary>
    internal Task ReturnAllotmentsAsync()
    {
        lock (_lock)
        {
            foreach (var state in _scopes.Values)
            {
                state.ExpiresAt = 0;
            }
        }

        ReturnExpired();
        Flush(urgent: true);
        return FlushedAsync();
    }

    // The semaphore is not disposed: a flush loop may still be waiting on it (it holds no wait handle).
    public void Dispose() => _returns.Dispose();

    // A request is admitted here from allotments when every scope it names holds enough of each limited kind;
    // otherwise by one script in Redis, which also takes allotments for the scopes busy enough to want one. While an
    // allotment is on its way, requests that would need it wait for it rather than each asking Redis.
    private async ValueTask<QuotaDecision> AdmitSharedAsync(IDatabase database, QuotaRequest request)
    {
        var key = request.Key is { } k ? State(k.Id) : null;
        var endpoint = request.Endpoint is { } e ? State(e.Id) : null;
        for (var attempt = 0; ; attempt++)
        {
            Task? refilling = null;
            var expired = false;
            lock (_lock)
            {
                var now = Now;
                if (attempt == 0)
                {
                    key?.Count(now);
                    endpoint?.Count(now);
                }

                expired = Expire(key, now) | Expire(endpoint, now);
                if (Fits(key, request.Key, request.Tokens) && Fits(endpoint, request.Endpoint, request.Tokens))
                {
                    Take(key, request.Key, request.Tokens);
                    Take(endpoint, request.Endpoint, request.Tokens);
                    AdmittedFromAllotments++;
                    var lease = new QuotaLease(request, key?.Slot * SlidingWindow.SlotMilliseconds ?? 0)
                    {
                        Shared = true,
                        EndpointReservedAt = endpoint?.Slot * SlidingWindow.SlotMilliseconds ?? 0,
                    };
                    return new QuotaDecision(lease, null, null, TimeSpan.Zero, Snapshot(key, request.Key, endpoint, request.Endpoint, now));
                }

                if (attempt == 0)
                {
                    refilling = Refilling(key, request.Key, request.Tokens) ?? Refilling(endpoint, request.Endpoint, request.Tokens);
                }
            }

            if (expired)
            {
                Flush(urgent: true);
            }

            if (refilling is null)
            {
                break;
            }

            await refilling;
        }

        return await AdmitInRedisAsync(database, request, key, endpoint);
    }

    private async Task<QuotaDecision> AdmitInRedisAsync(IDatabase database, QuotaRequest request, ScopeState? key, ScopeState? endpoint)
    {
        var count = (key is null ? 0 : 1) + (endpoint is null ? 0 : 1);
        var keys = new RedisKey[count * 3];
        var values = new RedisValue[3 + (count * 6)];
        values[0] = request.Tokens;
        values[1] = (long)ConcurrencyTtl.TotalMilliseconds;
        values[2] = Math.Max(1, _connection.Options.Replicas) * 4;
        TaskCompletionSource? refill = null;
        long sentAt;

        // A scope whose allotment covers the request is taken from it here and left out of the script (its limits
        // sent as none), so a replica is never refused by what it holds itself.
        long keyCovered = -1, endpointCovered = -1; // the slot taken from, when covered
        lock (_lock)
        {
            sentAt = Now;
            keyCovered = Cover(key, request.Key, request.Tokens, sentAt);
            endpointCovered = Cover(endpoint, request.Endpoint, request.Tokens, sentAt);
            var index = 0;
            foreach (var (state, scope) in Scopes(key, request.Key, endpoint, request.Endpoint))
            {
                keys[index * 3] = state.Requests;
                keys[(index * 3) + 1] = state.Tokens;
                keys[(index * 3) + 2] = state.Concurrency;
                var at = 3 + (index * 6);
                var covered = (state == key ? keyCovered : endpointCovered) >= 0;
                var limits = covered ? Unlimited : scope.Limits;
                values[at] = limits.RequestsPerMinute ?? -1;
                values[at + 1] = limits.TokensPerMinute ?? -1;
                values[at + 2] = limits.MaxConcurrent ?? -1;
                var wanted = !covered && state.Refill is null ? state.Wanted(sentAt) : 0;
                values[at + 3] = wanted;
                values[at + 4] = wanted * request.Tokens;
                values[at + 5] = wanted;
                if (wanted > 0)
                {
                    refill ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    state.Refill = refill.Task;
                }

                index++;
            }
        }

        var taken = false;
        try
        {
            var result = (long[])(await database.ScriptEvaluateAsync(AdmitScript, keys, values))!;
            _connection.Succeeded();
            if (result[0] != 1)
            {
                var refused = (result[1] == 1 ? request.Key ?? request.Endpoint : request.Endpoint)!;
                var (kind, reason) = Describe(refused, (int)result[2], result[4], request.Tokens);
                return new QuotaDecision(null, kind, reason, TimeSpan.FromMilliseconds(result[3]), Snapshot(result, 5));
            }

            QuotaDecision admitted;
            lock (_lock)
            {
                var now = Now;
                var redisNow = result[1];
                var slot = result[2];
                var expiresAt = sentAt + ((slot + 1) * SlidingWindow.SlotMilliseconds) - redisNow - AllotmentMargin;
                var at = 3;
                foreach (var (state, _) in Scopes(key, request.Key, endpoint, request.Endpoint))
                {
                    if ((state == key ? keyCovered : endpointCovered) < 0)
                    {
                        state.Granted(result.AsSpan(at, 8), slot, expiresAt, now, this);
                    }

                    at += 8;
                }

                var lease = new QuotaLease(request, keyCovered >= 0 ? keyCovered * SlidingWindow.SlotMilliseconds : redisNow)
                {
                    Shared = true,
                    EndpointReservedAt = endpointCovered >= 0 ? endpointCovered * SlidingWindow.SlotMilliseconds : redisNow,
                };
                admitted = new QuotaDecision(lease, null, null, TimeSpan.Zero, Snapshot(key, request.Key, endpoint, request.Endpoint, now));
                taken = true;
            }

            Flush(urgent: true); // what was left of replaced allotments
            return admitted;
        }
        finally
        {
            if (!taken && (keyCovered >= 0 || endpointCovered >= 0))
            {
                lock (_lock)
                {
                    Uncover(key, request.Key, request.Tokens, keyCovered, Now);
                    Uncover(endpoint, request.Endpoint, request.Tokens, endpointCovered, Now);
                }

                Flush();
            }

            if (refill is not null)
            {
                lock (_lock)
                {
                    foreach (var (state, _) in Scopes(key, request.Key, endpoint, request.Endpoint))
                    {
                        if (state.Refill == refill.Task)
                        {
                            state.Refill = null;
                        }
                    }
                }

                refill.SetResult();
            }
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

    // This replica's share of a scope's limits, made once per scope (and again when its limits change).
    private QuotaScope? Divide(QuotaScope? scope, int replicas)
    {
        if (scope is null || replicas == 1)
        {
            return scope;
        }

        var state = State(scope.Id);
        if (state.Share is { } share && ReferenceEquals(share.Of, scope))
        {
            return share.Divided;
        }

        var limits = scope.Limits;
        var divided = scope with
        {
            Limits = new RateLimits(
                limits.RequestsPerMinute is { } rpm ? Math.Max(1, rpm / replicas) : null,
                limits.TokensPerMinute is { } tpm ? Math.Max(1, tpm / replicas) : null,
                limits.MaxConcurrent is { } concurrent ? Math.Max(1, concurrent / replicas) : null),
        };
        state.Share = new DividedScope(scope, divided);
        return divided;
    }

    private static IEnumerable<(ScopeState State, QuotaScope Scope)> Scopes(ScopeState? key, QuotaScope? keyScope, ScopeState? endpoint, QuotaScope? endpointScope)
    {
        if (key is not null)
        {
            yield return (key, keyScope!);
        }

        if (endpoint is not null)
        {
            yield return (endpoint, endpointScope!);
        }
    }

    private ScopeState State(string scopeId) => _scopes.GetOrAdd(scopeId, static (id, prefix) => new ScopeState(prefix + id), _prefix);

    private static bool Fits(ScopeState? state, QuotaScope? scope, long tokens)
    {
        if (state is null)
        {
            return true;
        }

        var limits = scope!.Limits;
        return (limits.RequestsPerMinute is null || state.RequestsLeft >= 1)
            && (limits.TokensPerMinute is null || state.TokensLeft >= tokens)
            && (limits.MaxConcurrent is null || state.SlotsLeft >= 1);
    }

    private static void Take(ScopeState? state, QuotaScope? scope, long tokens)
    {
        if (state is null)
        {
            return;
        }

        var limits = scope!.Limits;
        if (limits.RequestsPerMinute is not null)
        {
            state.RequestsLeft--;
        }

        if (limits.TokensPerMinute is not null)
        {
            state.TokensLeft -= tokens;
        }

        if (limits.MaxConcurrent is not null)
        {
            state.SlotsLeft--;
        }
    }

    // Takes the request from the scope's allotment when it covers it; returns the allotment's slot, or -1.
    private static long Cover(ScopeState? state, QuotaScope? scope, long tokens, long now)
    {
        if (state is null || now >= state.ExpiresAt || !Fits(state, scope, tokens))
        {
            return -1;
        }

        Take(state, scope, tokens);
        return state.Slot;
    }

    // Gives back what Cover took for a request that was not admitted after all: to the allotment while it is the same
    // one, else to Redis, where it was counted.
    private void Uncover(ScopeState? state, QuotaScope? scope, long tokens, long slot, long now)
    {
        if (state is null || slot < 0)
        {
            return;
        }

        var limits = scope!.Limits;
        if (state.Slot == slot && now < state.ExpiresAt)
        {
            state.RequestsLeft += limits.RequestsPerMinute is null ? 0 : 1;
            state.TokensLeft += limits.TokensPerMinute is null ? 0 : tokens;
            state.SlotsLeft += limits.MaxConcurrent is null ? 0 : 1;
            return;
        }

        Pending(state.Requests, slot, limits.RequestsPerMinute is null ? 0 : -1);
        Pending(state.Tokens, slot, limits.TokensPerMinute is null ? 0 : -tokens);
        Pending(state.Concurrency, -1, limits.MaxConcurrent is null ? 0 : -1);
    }

    // The allotment a request that does not fit is waiting for, if one is on its way.
    private static Task? Refilling(ScopeState? state, QuotaScope? scope, long tokens) =>
        state is not null && !Fits(state, scope, tokens) ? state.Refill : null;

    // Gives back what is left of an allotment whose slot has ended. Returns whether anything is to be sent.
    private bool Expire(ScopeState? state, long now)
    {
        if (state is null || now < state.ExpiresAt || (state.RequestsLeft | state.TokensLeft | state.SlotsLeft) == 0)
        {
            return false;
        }

        Pending(state.Requests, state.Slot, -state.RequestsLeft);
        Pending(state.Tokens, state.Slot, -state.TokensLeft);
        Pending(state.Concurrency, -1, -state.SlotsLeft);
        state.RequestsLeft = state.TokensLeft = state.SlotsLeft = 0;
        return true;
    }

    // An admitted request ends: its token correction goes to the slot it was counted in; its concurrency slot joins the
    // allotment while one is held (the count in Redis already includes it), else is given back.
    // Returns whether a concurrency slot is to be given back to Redis (not to an allotment).
    private bool Give(QuotaScope? scope, long reservedAt, long delta, long now)
    {
        if (scope is null)
        {
            return false;
        }

        var state = State(scope.Id);
        if (scope.Limits.TokensPerMinute is not null && delta != 0)
        {
            Pending(state.Tokens, reservedAt / SlidingWindow.SlotMilliseconds, delta);
        }

        if (scope.Limits.MaxConcurrent is not null)
        {
            if (now < state.ExpiresAt)
            {
                state.SlotsLeft++;
                return false;
            }

            Pending(state.Concurrency, -1, -1);
            return true;
        }

        return false;
    }

    private void Pending(string key, long slot, long delta)
    {
        if (delta != 0)
        {
            ref var amount = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_pending, (key, slot), out _);
            amount += delta;
        }
    }

    private void ReturnExpired()
    {
        var any = false;
        lock (_lock)
        {
            var now = Now;
            foreach (var state in _scopes.Values)
            {
                any |= Expire(state, now);
            }
        }

        if (any)
        {
            Flush(urgent: true);
        }
    }

    // Starts the background loop that sends pending corrections, unless it runs already. The loop gathers for
    // FlushDelay before each batch (corrections of one scope and slot add up to one entry), unless something urgent
    // is pending: what another request may be waiting for, a concurrency slot or what is left of an allotment.
    private void Flush(bool urgent = false)
    {
        bool start;
        lock (_lock)
        {
            if (_pending.Count == 0)
            {
                return;
            }

            start = _flushing is null;
            if (start)
            {
                _flushing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }

        if (urgent && _urgent.CurrentCount == 0)
        {
            try
            {
                _urgent.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already signalled.
            }
        }

        if (start)
        {
            _ = Task.Run(FlushLoopAsync);
        }
    }

    private async Task FlushLoopAsync()
    {
        while (true)
        {
            await _urgent.WaitAsync(FlushDelay);
            Dictionary<(string Key, long Slot), long> batch;
            TaskCompletionSource? done = null;
            lock (_lock)
            {
                batch = _pending;
                if (batch.Count == 0)
                {
                    done = _flushing;
                    _flushing = null;
                }
                else
                {
                    _pending = new Dictionary<(string Key, long Slot), long>(batch.Count);
                }
            }

            if (done is not null)
            {
                done.SetResult();
                return;
            }

            var keys = new RedisKey[batch.Count];
            var values = new RedisValue[batch.Count * 2];
            var i = 0;
            foreach (var ((key, slot), delta) in batch)
            {
                keys[i] = key;
                values[2 * i] = slot;
                values[(2 * i) + 1] = delta;
                i++;
            }

            try
            {
                if (_connection.Multiplexer is { } multiplexer)
                {
                    await multiplexer.GetDatabase().ScriptEvaluateAsync(FlushScript, keys, values);
                }
            }
            catch (Exception e) when (RedisConnection.IsUnavailable(e))
            {
                _connection.Failed(e.GetType().Name);
            }
        }
    }

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

    // The headers of an admitted request: the tightest limit of each kind as of this replica's last answer from Redis,
    // what this replica still holds of its allotments counting as not used.
    private static RateLimitSnapshot Snapshot(ScopeState? key, QuotaScope? keyScope, ScopeState? endpoint, QuotaScope? endpointScope, long now)
    {
        long? limitRequests = null, limitTokens = null;
        long remainingRequests = long.MaxValue, remainingTokens = long.MaxValue, resetRequests = 0, resetTokens = 0;
        for (var i = 0; i < 2; i++) // not Scopes(): its iterator would be an allocation per admitted request
        {
            var (state, scope) = i == 0 ? (key, keyScope) : (endpoint, endpointScope);
            if (state is null || scope is null)
            {
                continue;
            }

            if (scope.Limits.RequestsPerMinute is { } rpm && Math.Max(0, rpm - state.RequestsInWindow + state.RequestsLeft) is var requests && requests < remainingRequests)
            {
                (limitRequests, remainingRequests, resetRequests) = (rpm, requests, Math.Max(0, state.RequestsResetAt - now));
            }

            if (scope.Limits.TokensPerMinute is { } tpm && Math.Max(0, tpm - state.TokensInWindow + state.TokensLeft) is var tokens && tokens < remainingTokens)
            {
                (limitTokens, remainingTokens, resetTokens) = (tpm, tokens, Math.Max(0, state.TokensResetAt - now));
            }
        }

        return new RateLimitSnapshot(
            limitRequests, limitRequests is null ? 0 : remainingRequests, TimeSpan.FromMilliseconds(resetRequests),
            limitTokens, limitTokens is null ? 0 : remainingTokens, TimeSpan.FromMilliseconds(resetTokens));
    }

    private sealed record DividedScope(QuotaScope Of, QuotaScope Divided);

    /// <summary>
    /// One scope as this replica sees it: its Redis keys, the allotment it holds (counted in Redis in
    /// <see cref="Slot"/>, usable until <see cref="ExpiresAt"/>), what Redis last said of its windows, and how busy it
    /// is here. Guarded by the store's lock.
    /// </summary>
    private sealed class ScopeState(string key)
    {
        public string Requests { get; } = key + ":r";

        public string Tokens { get; } = key + ":t";

        public string Concurrency { get; } = key + ":c";

        public long Slot;
        public long ExpiresAt;
        public long RequestsLeft;
        public long TokensLeft;
        public long SlotsLeft;
        public Task? Refill;
        public DividedScope? Share; // read and written without the lock: a reference is written whole
        public long RequestsInWindow;
        public long TokensInWindow;
        public long RequestsResetAt;
        public long TokensResetAt;
        private long _period;
        private long _count;
        private long _previous;

        /// <summary>Counts an admission asked for at <paramref name="now"/>, per quarter second.</summary>
        public void Count(long now)
        {
            var period = now / SlidingWindow.SlotMilliseconds;
            if (period != _period)
            {
                _previous = period == _period + 1 ? _count : 0;
                _count = 0;
                _period = period;
            }

            _count++;
        }

        /// <summary>How many requests' worth of allotment to ask for: about twice the last quarter second's demand.</summary>
        public long Wanted(long now)
        {
            var period = now / SlidingWindow.SlotMilliseconds;
            var demand = period == _period ? Math.Max(_count, _previous) : period == _period + 1 ? _count : 0;
            return demand >= AllotmentDemand ? demand * 2 : 0;
        }

        /// <summary>Takes in Redis's answer for this scope: the windows' state and the allotment granted.</summary>
        public void Granted(ReadOnlySpan<long> answer, long slot, long expiresAt, long now, RedisQuotaStore store)
        {
            RequestsInWindow = answer[0];
            RequestsResetAt = now + answer[1];
            TokensInWindow = answer[2];
            TokensResetAt = now + answer[3];
            var (requests, tokens, slots) = (answer[5], answer[6], answer[7]);
            if (requests + tokens + slots == 0)
            {
                return;
            }

            // A new allotment replaces what is left of the previous one, which is given back in its own slot.
            store.Expire(this, long.MaxValue);
            Slot = slot;
            ExpiresAt = expiresAt;
            RequestsLeft = requests;
            TokensLeft = tokens;
            SlotsLeft = slots;
        }
    }
}
