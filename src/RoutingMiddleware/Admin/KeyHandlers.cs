using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using ModelRouting.Configuration;
using ModelRouting.Errors;
using ModelRouting.Keys;
using ModelRouting.Quotas;
using ModelRouting.SharedState;

namespace ModelRouting.Admin;

/// <summary>
/// The admin API's client keys and usage (SPEC §14): create (the secret is answered once, only its hash is
/// kept), list and read (never a secret), change models, limits, enabled and expiry, delete; usage per key
/// and per endpoint. Keys defined in configuration are listed but changed there.
/// </summary>
internal sealed class KeyHandlers(ModelRegistrySource source, UsageLedger usage, SharedUsage sharedUsage, ILogger<KeyHandlers> logger)
{
    /// <summary>GET /admin/keys.</summary>
    public Task ListAsync(HttpContext context) =>
        AdminResponse.WriteAsync(context, StatusCodes.Status200OK, new KeyList([.. source.Current.Keys.All.Select(Describe)]));

    /// <summary>GET /admin/keys/{id}.</summary>
    public Task GetAsync(HttpContext context)
    {
        var id = AdminRequest.RouteValue(context, "id");
        return source.Current.Keys.Find(id) is { } key
            ? AdminResponse.WriteAsync(context, StatusCodes.Status200OK, Describe(key))
            : NotFound(id).WriteAsync(context);
    }

    /// <summary>POST /admin/keys with <c>{"Id","Models","Limits","Enabled","ExpiresAt"}</c>: answers 201 with the secret, once.</summary>
    public async Task CreateAsync(HttpContext context)
    {
        var (definition, error) = await ReadAsync(context);
        if (error is not null)
        {
            await error.Value.WriteAsync(context);
            return;
        }

        var secret = "sk-gw-" + Base64Url(RandomNumberGenerator.GetBytes(32));
        var entry = new ClientKeyOptions
        {
            Id = string.IsNullOrWhiteSpace(definition!.Id) ? "key-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6)) : definition.Id,
            KeyHash = ClientKeyValidator.HashHex(secret),
            Models = definition.Models,
            Limits = definition.Limits,
            Enabled = definition.Enabled ?? true,
            ExpiresAt = definition.ExpiresAt,
        };
        var change = source.Administer((administered, overlay) =>
        {
            if (Validate(entry, administered) is { } invalid)
            {
                return invalid;
            }

            if (source.Current.Keys.Find(entry.Id!) is not null)
            {
                return AdminChange.Fail($"Id: a key '{entry.Id}' exists already.", "Id", StatusCodes.Status409Conflict);
            }

            var next = overlay.Clone();
            next.Keys.Add(new RuntimeKey { Definition = entry, Created = source.Time.GetUtcNow() });
            return new AdminChange(next);
        });
        if (change.Error is not null)
        {
            await (OpenAIError.InvalidRequest(change.Error, change.Field) with { StatusCode = change.Status }).WriteAsync(context);
            return;
        }

        AdminLog.Changed(logger, "client key created", entry.Id!);
        var created = source.Current.Keys.Find(entry.Id!)!;
        await AdminResponse.WriteAsync(context, StatusCodes.Status201Created, Describe(created) with { Key = secret });
    }

    /// <summary>PATCH /admin/keys/{id}: changes the members given (Models, Limits, Enabled, ExpiresAt).</summary>
    public async Task UpdateAsync(HttpContext context)
    {
        var id = AdminRequest.RouteValue(context, "id");
        var body = await AdminRequest.ReadObjectAsync(context);
        if (body.Error is { } bodyError)
        {
            await bodyError.WriteAsync(context);
            return;
        }

        var (patch, error) = Deserialize(body.Value!);
        if (error is not null)
        {
            await error.Value.WriteAsync(context);
            return;
        }

        if (patch!.Id is not null && patch.Id != id)
        {
            await OpenAIError.InvalidRequest("Id: a key's id cannot change.", "Id").WriteAsync(context);
            return;
        }

        var change = source.Administer((administered, overlay) =>
        {
            if (Editable(id, overlay) is { } refusal)
            {
                return refusal;
            }

            var next = overlay.Clone();
            var stored = next.Keys.First(k => k.Definition.Id == id).Definition;
            stored.Models = Has(body.Value!, "Models") ? patch.Models : stored.Models;
            stored.Limits = Has(body.Value!, "Limits") ? patch.Limits : stored.Limits;
            stored.Enabled = patch.Enabled ?? stored.Enabled;
            stored.ExpiresAt = Has(body.Value!, "ExpiresAt") ? patch.ExpiresAt : stored.ExpiresAt;
            return Validate(stored, administered) ?? new AdminChange(next);
        });
        if (change.Error is not null)
        {
            await Failure(change, id).WriteAsync(context);
            return;
        }

        AdminLog.Changed(logger, "client key changed", id);
        await AdminResponse.WriteAsync(context, StatusCodes.Status200OK, Describe(source.Current.Keys.Find(id)!));
    }

    /// <summary>DELETE /admin/keys/{id}.</summary>
    public async Task DeleteAsync(HttpContext context)
    {
        var id = AdminRequest.RouteValue(context, "id");
        var change = source.Administer((_, overlay) =>
        {
            if (Editable(id, overlay) is { } refusal)
            {
                return refusal;
            }

            var next = overlay.Clone();
            next.Keys.RemoveAll(k => k.Definition.Id == id);
            return new AdminChange(next);
        });
        if (change.Error is not null)
        {
            await Failure(change, id).WriteAsync(context);
            return;
        }

        AdminLog.Changed(logger, "client key deleted", id);
        await AdminResponse.WriteAsync(context, StatusCodes.Status200OK, new Deleted(id, "key", true));
    }

    /// <summary>
    /// GET /admin/usage: requests and tokens per key and per endpoint. With Redis, every replica's added up (all they
    /// ever served, <c>"scope": "replicas"</c>); without it, or while Redis cannot be asked, this process's since it
    /// started (<c>"scope": "process"</c>).
    /// </summary>
    public async Task UsageAsync(HttpContext context)
    {
        if (sharedUsage.Enabled && await sharedUsage.ReadAsync() is var (keys, endpoints))
        {
            await AdminResponse.WriteAsync(context, StatusCodes.Status200OK, new UsageReport(
                "replicas", Sorted(keys), Sorted(endpoints)));
            return;
        }

        await AdminResponse.WriteAsync(context, StatusCodes.Status200OK, new UsageReport(
            "process",
            usage.Keys.ToDictionary(p => p.Key, p => UsageCounts.Of(p.Value)),
            usage.Endpoints.ToDictionary(p => p.Key, p => UsageCounts.Of(p.Value))));
    }

    private static Dictionary<string, UsageCounts> Sorted(Dictionary<string, UsageCounts> counts) =>
        counts.OrderBy(p => p.Key, StringComparer.Ordinal).ToDictionary(p => p.Key, p => p.Value);

    private static OpenAIError Failure(AdminChange change, string id) =>
        change.Status == StatusCodes.Status404NotFound ? NotFound(id) : OpenAIError.InvalidRequest(change.Error!, change.Field) with { StatusCode = change.Status };

    private static OpenAIError NotFound(string id) => OpenAIError.NotFound($"There is no client key '{id}'.", "id");

    private AdminChange? Editable(string id, RuntimeOverlay overlay)
    {
        if (overlay.Keys.Any(k => k.Definition.Id == id))
        {
            return null;
        }

        return source.Current.Keys.Find(id) is { FromConfiguration: true }
            ? AdminChange.Fail($"The key '{id}' is defined in configuration (ModelRouting:Keys); change it there.", "id", StatusCodes.Status409Conflict)
            : AdminChange.Fail("", null, StatusCodes.Status404NotFound);
    }

    private static AdminChange? Validate(ClientKeyOptions entry, Registry.ModelRegistry registry)
    {
        var errors = new List<(string Field, string Message)>();
        ClientKeyValidator.Validate(entry, registry, (field, message) => errors.Add((field, message)));
        return errors.Count == 0 ? null : AdminChange.Fail(string.Join("; ", errors.Select(e => $"{e.Field}: {e.Message}")), errors[0].Field.Split(':')[0]);
    }

    private static async Task<(KeyDefinition? Definition, OpenAIError? Error)> ReadAsync(HttpContext context)
    {
        var body = await AdminRequest.ReadObjectAsync(context);
        return body.Error is { } error ? (null, error) : Deserialize(body.Value!);
    }

    private static (KeyDefinition? Definition, OpenAIError? Error) Deserialize(JsonObject body)
    {
        try
        {
            return (body.Deserialize<KeyDefinition>(AdminRequest.DefinitionJson) ?? new KeyDefinition(), null);
        }
        catch (JsonException e)
        {
            return (null, OpenAIError.InvalidRequest("The key definition is not valid: " + e.Message));
        }
    }

    private static bool Has(JsonObject body, string name) => body.Any(p => string.Equals(p.Key, name, StringComparison.OrdinalIgnoreCase));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static KeyView Describe(ClientKey key) => new(
        key.Id, key.FromConfiguration ? "configuration" : "admin", key.Models, key.Limits, key.Enabled, key.ExpiresAt,
        key.FromConfiguration ? null : key.Created, null);

    /// <summary>A key as the admin API reads it: configuration's field names, all optional.</summary>
    private sealed class KeyDefinition
    {
        public string? Id { get; set; }

        public List<string>? Models { get; set; }

        public RateLimitOptions? Limits { get; set; }

        public bool? Enabled { get; set; }

        public DateTimeOffset? ExpiresAt { get; set; }
    }

    private sealed record KeyList([property: JsonPropertyName("data")] IReadOnlyList<KeyView> Data);

    private sealed record KeyView(
        [property: JsonPropertyName("id")] string Id,
        [property: JsonPropertyName("source")] string Source,
        [property: JsonPropertyName("models")] IReadOnlyList<string> Models,
        [property: JsonPropertyName("limits")] RateLimits? Limits,
        [property: JsonPropertyName("enabled")] bool Enabled,
        [property: JsonPropertyName("expires_at")] DateTimeOffset? ExpiresAt,
        [property: JsonPropertyName("created")] DateTimeOffset? Created,
        [property: JsonPropertyName("key"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Key);

    private sealed record UsageReport(
        [property: JsonPropertyName("scope")] string Scope,
        [property: JsonPropertyName("keys")] Dictionary<string, UsageCounts> Keys,
        [property: JsonPropertyName("endpoints")] Dictionary<string, UsageCounts> Endpoints);
}
