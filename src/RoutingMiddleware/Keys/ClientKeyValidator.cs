using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using ModelRouting.Configuration;
using ModelRouting.Quotas;
using ModelRouting.Registry;

namespace ModelRouting.Keys;

/// <summary>Validates client key entries (SPEC §14), each error naming the field.</summary>
internal static class ClientKeyValidator
{
    /// <summary>Validates every configured key; errors name the entry (<c>ModelRouting:Keys[i] ('id')</c>) and field.</summary>
    public static void ValidateAll(IReadOnlyList<ClientKeyOptions> keys, ModelRegistry registry, List<string> errors)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        var hashes = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < keys.Count; i++)
        {
            var entry = keys[i];
            var where = string.IsNullOrWhiteSpace(entry.Id) ? $"ModelRouting:Keys[{i}]" : $"ModelRouting:Keys[{i}] ('{entry.Id}')";
            Validate(entry, registry, (field, message) => errors.Add($"{where}: {field}: {message}"));
            if (!string.IsNullOrWhiteSpace(entry.Id) && !ids.TryAdd(entry.Id, i))
            {
                errors.Add($"{where}: Id: '{entry.Id}' is a duplicate of ModelRouting:Keys[{ids[entry.Id]}]");
            }

            if (HashOf(entry) is { } hash && !hashes.TryAdd(Convert.ToHexString(hash), i))
            {
                errors.Add($"{where}: KeyHash: the same secret as ModelRouting:Keys[{hashes[Convert.ToHexString(hash)]}]");
            }
        }
    }

    /// <summary>Validates one entry, reporting (field, message) pairs.</summary>
    public static void Validate(ClientKeyOptions entry, ModelRegistry registry, Action<string, string> error)
    {
        if (string.IsNullOrWhiteSpace(entry.Id))
        {
            error("Id", "is required");
        }
        else if (entry.Id.Length > 128 || entry.Id.Any(char.IsControl))
        {
            error("Id", "must be at most 128 characters, without control characters");
        }

        var hasHash = !string.IsNullOrEmpty(entry.KeyHash);
        var hasKey = !string.IsNullOrEmpty(entry.Key);
        if (hasHash && hasKey)
        {
            error("KeyHash", "set KeyHash or Key, not both");
        }
        else if (!hasHash && !hasKey)
        {
            error("KeyHash", "is required: the hex SHA-256 of the key (or Key, the key itself)");
        }
        else if (hasHash && !IsSha256Hex(entry.KeyHash!))
        {
            error("KeyHash", "must be 64 hex digits (the SHA-256 of the key)");
        }
        else if (hasKey && entry.Key!.Length > ClientKeySet.MaxSecretLength)
        {
            error("Key", $"must be at most {ClientKeySet.MaxSecretLength} characters");
        }

        if (entry.Models is not { Count: > 0 })
        {
            error("Models", "is required: the endpoint ids, aliases or patterns (base:*, *) the key may use (use [\"*\"] for every model)");
        }
        else
        {
            for (var m = 0; m < entry.Models.Count; m++)
            {
                if (Problem(entry.Models[m], registry) is { } problem)
                {
                    error($"Models[{m}]", problem);
                }
            }
        }

        RateLimits.Validate(entry.Limits, error);
    }

    /// <summary>The SHA-256 an entry stands for (its hash, or the hash of its plain key), or null if it has neither valid.</summary>
    public static byte[]? HashOf(ClientKeyOptions entry)
    {
        if (!string.IsNullOrEmpty(entry.KeyHash))
        {
            return IsSha256Hex(entry.KeyHash) ? Convert.FromHexString(entry.KeyHash) : null;
        }

        return string.IsNullOrEmpty(entry.Key) ? null : SHA256.HashData(Encoding.UTF8.GetBytes(entry.Key));
    }

    /// <summary>The hex SHA-256 of a secret, as <c>KeyHash</c> takes it.</summary>
    public static string HashHex(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    private static bool IsSha256Hex(string value) =>
        value.Length == 64 && value.All(char.IsAsciiHexDigit);

    private static string? Problem(string? entry, ModelRegistry registry)
    {
        if (string.IsNullOrWhiteSpace(entry))
        {
            return "must not be empty";
        }

        if (entry == "*" || registry.TryGet(entry, out _) || registry.Aliases.ContainsKey(entry))
        {
            return null;
        }

        if (entry.EndsWith(":*", StringComparison.Ordinal))
        {
            var baseId = entry[..^2];
            return registry.TryGet(baseId, out _) || registry.AllEndpoints.Any(e => e.Id.Value.StartsWith(baseId + ":", StringComparison.Ordinal))
                ? null
                : string.Create(CultureInfo.InvariantCulture, $"'{entry}' matches no endpoint: '{baseId}' is not an endpoint id");
        }

        return entry.Contains('*', StringComparison.Ordinal)
            ? $"'{entry}' is not a pattern this gateway knows (use an endpoint id, an alias, base:* or *)"
            : $"'{entry}' is neither an endpoint id nor an alias";
    }
}
