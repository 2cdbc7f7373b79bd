using System.Text.Json;
using ModelRouting.Admin;
using StackExchange.Redis;

namespace ModelRouting.SharedState;

/// <summary>Which shared overlay document a replica has seen: the document's lineage and its version.</summary>
/// <remarks>
/// The lineage is a random id chosen when the document is first written, so a Redis that restarted empty and was
/// seeded again (version 1 again) never passes for the document a replica already has.
/// </remarks>
internal readonly record struct SharedOverlayMark(string? Lineage, long Version)
{
    public static readonly SharedOverlayMark None = new(null, 0);
}

/// <summary>A shared overlay document read from Redis: its mark, and the overlay or why it was refused.</summary>
internal sealed record SharedOverlayDocument(SharedOverlayMark Mark, RuntimeOverlay? Overlay, string? Error);

/// <summary>
/// The admin overlay (keys included) in Redis, the source of truth when shared state is on (SPEC §16): one hash
/// holding the document, its version and lineage, changed only by a compare-and-set script that also publishes
/// the new mark, so every replica hears of it (and polls the version as a safety net: pub/sub is at-most-once).
/// </summary>
internal sealed class SharedOverlayStore(RedisConnection connection)
{
    // KEYS[1] the hash, KEYS[2] the channel; ARGV: expected lineage, expected version, document, lineage for a first write.
    private const string CompareAndSetScript = """
        local current = redis.call('HMGET', KEYS[1], 'id', 'v')
        local id = current[1]
        local v = tonumber(current[2] or '0')
        if v ~= tonumber(ARGV[2]) or (v > 0 and id ~= ARGV[1]) then
          return {0, id or '', v}
        end
        if v == 0 then id = ARGV[4] end
        v = v + 1
        redis.call('HSET', KEYS[1], 'id', id, 'v', v, 'doc', ARGV[3])
        redis.call('PUBLISH', KEYS[2], id .. ':' .. v)
        return {1, id, v}
        """;

    private readonly RedisKey _key = connection.Options.KeyPrefix + "overlay";

    /// <summary>Gets the channel a change is announced on.</summary>
    public RedisChannel Channel { get; } = RedisChannel.Literal(connection.Options.KeyPrefix + "overlay:changed");

    /// <summary>Gets whether shared state is on.</summary>
    public bool Enabled => connection.Enabled;

    /// <summary>Gets the connection.</summary>
    public RedisConnection Connection => connection;

    /// <summary>Reads the current mark only (cheap: the periodic check).</summary>
    /// <exception cref="SharedStateUnavailableException">Redis did not answer.</exception>
    public SharedOverlayMark ReadMark()
    {
        var values = Call(db => db.HashGet(_key, ["id", "v"]));
        return Mark(values[0], values[1]);
    }

    /// <summary>Reads the document; a document that does not parse is returned with its error, never half applied.</summary>
    /// <exception cref="SharedStateUnavailableException">Redis did not answer.</exception>
    public SharedOverlayDocument Read()
    {
        var values = Call(db => db.HashGet(_key, ["id", "v", "doc"]));
        var mark = Mark(values[0], values[1]);
        if (mark.Version == 0)
        {
            return new SharedOverlayDocument(mark, null, null);
        }

        try
        {
            var bytes = (byte[]?)values[2] ?? throw new JsonException("the document is missing");
            return new SharedOverlayDocument(mark, RuntimeOverlay.Parse(bytes), null);
        }
        catch (JsonException e)
        {
            return new SharedOverlayDocument(mark, null, e.Message);
        }
    }

    /// <summary>
    /// Writes <paramref name="overlay"/> if the document in Redis is still <paramref name="expected"/>; returns the
    /// new mark, or null when another replica changed it first (read it and retry).
    /// </summary>
    /// <exception cref="SharedStateUnavailableException">Redis did not answer: nothing was written.</exception>
    public SharedOverlayMark? CompareAndSet(SharedOverlayMark expected, RuntimeOverlay overlay)
    {
        var document = JsonSerializer.SerializeToUtf8Bytes(overlay, RuntimeOverlay.Json);
        var result = (RedisResult[])Call(db => db.ScriptEvaluate(
            CompareAndSetScript,
            [_key, connection.Options.KeyPrefix + "overlay:changed"],
            [expected.Lineage ?? "", expected.Version, document, Guid.NewGuid().ToString("N")]))!;
        return (long)result[0] == 1 ? new SharedOverlayMark((string?)result[1], (long)result[2]) : null;
    }

    /// <summary>Parses a change notice (<c>lineage:version</c>).</summary>
    public static SharedOverlayMark? ParseNotice(string? notice)
    {
        var colon = notice?.LastIndexOf(':') ?? -1;
        return colon > 0 && long.TryParse(notice.AsSpan(colon + 1), out var version) ? new SharedOverlayMark(notice![..colon], version) : null;
    }

    private static SharedOverlayMark Mark(RedisValue id, RedisValue version) =>
        version.IsNull ? SharedOverlayMark.None : new SharedOverlayMark((string?)id, (long)version);

    private T Call<T>(Func<IDatabase, T> call)
    {
        // Admin writes and the background check only: never on the request path, so the breaker is not consulted
        // here (a write must find out whether Redis is back), but a failure still opens it for the request path.
        var multiplexer = connection.Multiplexer ?? throw new SharedStateUnavailableException("Shared state (ModelRouting:Redis) is off.");
        try
        {
            var value = call(multiplexer.GetDatabase());
            connection.Succeeded();
            return value;
        }
        catch (Exception e) when (RedisConnection.IsUnavailable(e))
        {
            connection.Failed(e.GetType().Name);
            throw new SharedStateUnavailableException($"Redis (ModelRouting:Redis) did not answer: {e.Message}", e);
        }
    }
}
