using System.Collections.Frozen;

namespace ModelRouting.Proxy;

/// <summary>
/// What clients may reach through the proxy routes (SPEC §12): the inspected POST paths, and the paths in
/// <c>ModelRouting:PassThroughPaths</c> (exact, or <c>prefix/*</c>). Everything else a proxy route matches is
/// answered 404 <c>unknown_path</c> without reaching a backend, and backend management paths (adapter
/// loading, sleep, profiling, model pulls, …) are never reachable, whatever the pass-through list says.
/// Immutable.
/// </summary>
internal sealed class ClientSurface
{
    // Paths with which model servers manage themselves (vLLM, llama.cpp server, Ollama, TGI/LoRAX): checked with
    // and without the /v1 prefix, case-insensitively, a trailing '/' ignored.
    private static readonly FrozenSet<string> s_managementPaths = new[]
    {
        "/load_lora_adapter", "/unload_lora_adapter", "/reset_prefix_cache", "/reset_mm_cache", "/sleep", "/wake_up",
        "/is_sleeping", "/collective_rpc", "/start_profile", "/stop_profile", "/scale_elastic_ep", "/is_scaling_elastic_ep",
        "/pause", "/resume", "/update_weights", "/init_weight_transfer", "/server_info", "/metrics", "/lora-adapters", "/props",
        "/api/pull", "/api/push", "/api/create", "/api/copy", "/api/delete", "/download", "/shutdown",
    }.ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    private static readonly string[] s_managementPrefixes = ["/slots", "/api/blobs", "/v1/slots"];

    private readonly FrozenSet<string> _exact;
    private readonly string[] _prefixes;

    public ClientSurface(IEnumerable<string>? passThroughPaths)
    {
        var exact = new List<string>();
        var prefixes = new List<string>();
        foreach (var entry in passThroughPaths ?? [])
        {
            if (string.IsNullOrWhiteSpace(entry))
            {
                continue;
            }

            var path = entry.Trim();
            if (path.EndsWith("/*", StringComparison.Ordinal))
            {
                prefixes.Add(path[..^1]);
            }
            else
            {
                exact.Add(Normalize(path));
            }
        }

        _exact = exact.ToFrozenSet(StringComparer.OrdinalIgnoreCase);
        _prefixes = [.. prefixes];
    }

    /// <summary>Gets the surface with no pass-through paths.</summary>
    public static ClientSurface Empty { get; } = new(null);

    /// <summary>Returns whether <paramref name="path"/> is a pass-through path (never a management path).</summary>
    public bool IsPassThrough(string? path)
    {
        if (string.IsNullOrEmpty(path) || IsBackendManagementPath(path) || HasEncodedDotSegment(path))
        {
            return false;
        }

        if (_exact.Contains(Normalize(path)))
        {
            return true;
        }

        foreach (var prefix in _prefixes)
        {
            if (path.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) && path.Length > prefix.Length)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Returns whether <paramref name="path"/> is a model server's management path.</summary>
    public static bool IsBackendManagementPath(string path)
    {
        // Decoded forms too: a client must not reach /v1/load_lora_adapter as /v1/load%5Flora_adapter.
        var value = Normalize(path.Contains('%', StringComparison.Ordinal) ? Uri.UnescapeDataString(path) : path);
        var bare = value.StartsWith("/v1/", StringComparison.OrdinalIgnoreCase) ? value[3..] : value;
        if (s_managementPaths.Contains(bare))
        {
            return true;
        }

        foreach (var prefix in s_managementPrefixes)
        {
            if (value.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) && (value.Length == prefix.Length || value[prefix.Length] == '/'))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Validates a pass-through entry; returns the problem, or null.</summary>
    public static string? Validate(string? entry)
    {
        if (string.IsNullOrWhiteSpace(entry) || !entry.Trim().StartsWith('/'))
        {
            return $"'{entry}' must be an absolute path ('/v1/audio/transcriptions') or a prefix ('/v1/files/*')";
        }

        var path = entry.Trim();
        if (path.Contains('*', StringComparison.Ordinal) && (!path.EndsWith("/*", StringComparison.Ordinal) || path.IndexOf('*') != path.Length - 1))
        {
            return $"'{entry}': '*' is allowed only as a whole last segment ('/v1/files/*')";
        }

        if (IsBackendManagementPath(path.EndsWith("/*", StringComparison.Ordinal) ? path[..^2] : path))
        {
            return $"'{entry}' is a backend management path; clients can never reach those";
        }

        return null;
    }

    // Kestrel removes dot segments, but not percent-encoded ones ("%2F..%2F"), which a backend may decode and
    // resolve: such a path could step out of a pass-through prefix, so it never passes.
    private static bool HasEncodedDotSegment(string path) =>
        path.Contains('%', StringComparison.Ordinal) && Uri.UnescapeDataString(path).Replace('\\', '/').Split('/').Any(s => s is "." or "..");

    private static string Normalize(string path) => path.Length > 1 && path.EndsWith('/') ? path.TrimEnd('/') : path;
}
