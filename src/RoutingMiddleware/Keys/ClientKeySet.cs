using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;
using ModelRouting.Configuration;
using ModelRouting.Quotas;
using ModelRouting.Registry;

namespace ModelRouting.Keys;

/// <summary>
/// The client keys in force (configuration's and the admin API's), looked up by the SHA-256 of the secret a
/// request presents (SPEC §14). Empty: the gateway is open.
/// </summary>
internal sealed class ClientKeySet
{
    /// <summary>The longest secret looked at; anything longer is refused without hashing.</summary>
    public const int MaxSecretLength = 512;

    private readonly Dictionary<UInt128, ClientKey> _byHash;

    // Secrets recently presented that matched a key, so that a client sending the same key again is not hashed again:
    // SHA-256 goes through OpenSSL on Linux, 0.6 µs in a benchmark's loop but 3-4 µs of proxy CPU per request in the
    // loaded gateway (README, "Quotas"), nearly all of what authentication cost. Only matching secrets are kept, in a
    // slot picked by the secret's per-process randomized string hash, and a slot is compared in constant time, as the
    // hashes are. The set is rebuilt on every change of keys (configuration or admin API), so nothing cached outlives
    // the keys it was checked against; whether the key is enabled and unexpired is checked on every request, cached
    // or not. Four slots per key (a power of two, at most 4,096), so that keys in use seldom share one.
    private readonly RecentSecret?[] _recent;

    private ClientKeySet(List<ClientKey> keys)
    {
        All = keys;
        _byHash = new Dictionary<UInt128, ClientKey>(keys.Count);
        _recent = new RecentSecret?[(int)BitOperations.RoundUpToPowerOf2((uint)Math.Clamp(keys.Count * 4, 1, 4096))];
        foreach (var key in keys)
        {
            _byHash.TryAdd(Prefix(key.Hash), key);
        }
    }

    public static ClientKeySet Empty { get; } = new([]);

    /// <summary>Gets whether any key exists (enabled or not): then every client request needs one.</summary>
    public bool IsEnabled => All.Count > 0;

    public IReadOnlyList<ClientKey> All { get; }

    public ClientKey? Find(string id) => All.FirstOrDefault(k => k.Id == id);

    /// <summary>Builds the set: configuration's keys (validated before), then the admin API's.</summary>
    public static ClientKeySet Build(IReadOnlyList<ClientKeyOptions> configured, IReadOnlyList<RuntimeKey> runtime, ModelRegistry registry)
    {
        if (configured.Count == 0 && runtime.Count == 0)
        {
            return Empty;
        }

        var keys = new List<ClientKey>(configured.Count + runtime.Count);
        foreach (var entry in configured)
        {
            if (ClientKeyValidator.HashOf(entry) is { } hash)
            {
                keys.Add(Compile(entry, hash, registry, fromConfiguration: true, DateTimeOffset.UnixEpoch));
            }
        }

        foreach (var entry in runtime)
        {
            if (ClientKeyValidator.HashOf(entry.Definition) is { } hash && keys.All(k => k.Id != entry.Definition.Id))
            {
                keys.Add(Compile(entry.Definition, hash, registry, fromConfiguration: false, entry.Created));
            }
        }

        return new ClientKeySet(keys);
    }

    /// <summary>
    /// Finds the key a request presents (<c>Authorization: Bearer</c>, else <c>api-key</c>) and checks it is in
    /// force; returns it, or the 401 message. No allocation on success, except the first time a secret is seen; the
    /// clock is read only for a key that expires.
    /// </summary>
    public ClientKey? Authenticate(HttpRequest request, TimeProvider time, out string? failure)
    {
        var authorization = request.Headers[HeaderNames.Authorization];
        ReadOnlySpan<char> secret;
        if (authorization.Count > 0)
        {
            if (authorization.Count > 1)
            {
                failure = "The request has more than one Authorization header.";
                return null;
            }

            var value = authorization[0].AsSpan().Trim();
            if (value.Length < 7 || !value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            {
                failure = "The Authorization header must use the Bearer scheme (Authorization: Bearer YOUR_KEY).";
                return null;
            }

            secret = value[7..].Trim();
        }
        else if (request.Headers["api-key"] is { Count: 1 } apiKey)
        {
            secret = apiKey[0].AsSpan().Trim();
        }
        else
        {
            failure = "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or in an api-key header.";
            return null;
        }

        if (secret.IsEmpty || secret.Length > MaxSecretLength)
        {
            failure = "Incorrect API key provided.";
            return null;
        }

        var key = Find(secret);
        if (key is null)
        {
            failure = "Incorrect API key provided.";
            return null;
        }

        if (!key.Enabled)
        {
            failure = "The API key provided is disabled.";
            return null;
        }

        if (key.ExpiresAt is { } expires && expires <= time.GetUtcNow())
        {
            failure = "The API key provided has expired.";
            return null;
        }

        failure = null;
        return key;
    }

    // The key whose hash is the secret's SHA-256, or null; from the cache of recent secrets when the secret is in it.
    private ClientKey? Find(ReadOnlySpan<char> secret)
    {
        ref var slot = ref _recent[string.GetHashCode(secret) & (_recent.Length - 1)];
        if (Volatile.Read(ref slot) is { } recent && recent.Matches(secret))
        {
            return recent.Key;
        }

        Span<byte> utf8 = stackalloc byte[Encoding.UTF8.GetMaxByteCount(secret.Length)];
        var length = Encoding.UTF8.GetBytes(secret, utf8);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(utf8[..length], hash);
        if (!_byHash.TryGetValue(Prefix(hash), out var key) || !CryptographicOperations.FixedTimeEquals(hash, key.Hash))
        {
            return null;
        }

        Volatile.Write(ref slot, new RecentSecret(secret.ToString(), key));
        return key;
    }

    private static ClientKey Compile(ClientKeyOptions entry, byte[] hash, ModelRegistry registry, bool fromConfiguration, DateTimeOffset created) =>
        new(entry.Id!, hash, ModelGrant.Compile(entry.Models ?? [], registry), RateLimits.From(entry.Limits), entry.Enabled, entry.ExpiresAt,
            fromConfiguration, created, [.. entry.Models ?? []]);

    private static UInt128 Prefix(ReadOnlySpan<byte> hash) => BinaryPrimitives.ReadUInt128LittleEndian(hash);

    /// <summary>A secret that matched <see cref="Key"/>, and the key; immutable, so a slot is replaced whole.</summary>
    private sealed class RecentSecret(string secret, ClientKey key)
    {
        public ClientKey Key => key;

        // Constant time over the secret's length, as the comparison of hashes is.
        public bool Matches(ReadOnlySpan<char> candidate) =>
            candidate.Length == secret.Length
            && CryptographicOperations.FixedTimeEquals(MemoryMarshal.AsBytes(secret.AsSpan()), MemoryMarshal.AsBytes(candidate));
    }
}

/// <summary>A key created through the admin API, as the runtime overlay keeps it (the hash, never the secret).</summary>
internal sealed class RuntimeKey
{
    /// <summary>Gets or sets the definition, validated like a configuration entry (<c>KeyHash</c> set, <c>Key</c> never).</summary>
    public ClientKeyOptions Definition { get; set; } = new();

    /// <summary>Gets or sets when the key was created.</summary>
    public DateTimeOffset Created { get; set; }
}
