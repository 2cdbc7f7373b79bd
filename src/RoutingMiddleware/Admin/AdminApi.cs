using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using ModelRouting.Adapters;
using ModelRouting.Configuration;
using ModelRouting.Errors;
using ModelRouting.Health;
using ModelRouting.Registry;

namespace ModelRouting.Admin;

/// <summary>
/// The runtime admin API's handlers: list and inspect endpoints, register/replace and unregister them,
/// set a status, add/move/remove aliases and set the default. Every change is validated like configuration
/// and persisted before it takes effect. Guarded by <see cref="AdminOptions.Key"/> (off without one).
/// </summary>
internal sealed partial class AdminApi(
    ModelRegistrySource source,
    IOptionsMonitor<ModelRoutingOptions> options,
    VllmAdapterManager adapters,
    ILogger<AdminApi> logger)
{
    private static readonly JsonSerializerOptions s_output = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private static readonly JsonSerializerOptions s_definition = new()
    {
        PropertyNameCaseInsensitive = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>Wraps <paramref name="handler"/> with the admin checks: enabled, bound port, bearer key.</summary>
    public static RequestDelegate Guard(Func<AdminApi, Func<HttpContext, Task>> handler) => context =>
        context.RequestServices.GetRequiredService<AdminApi>().InvokeAsync(context, handler);

    private Task InvokeAsync(HttpContext context, Func<AdminApi, Func<HttpContext, Task>> handler)
    {
        var admin = options.CurrentValue.Admin;
        if (string.IsNullOrEmpty(admin.Key) || !IsAdminPort(admin.Urls, context.Connection.LocalPort))
        {
            return OpenAIError.NotFound("The admin API is not enabled on this address.").WriteAsync(context);
        }

        if (!IsAuthorized(context.Request.Headers.Authorization.ToString(), admin.Key))
        {
            Log.Unauthorized(logger, context.Request.Method, context.Request.Path.Value ?? "");
            context.Response.Headers.WWWAuthenticate = "Bearer";
            return OpenAIError.Unauthorized("The admin API needs 'Authorization: Bearer <admin key>' with the configured admin key.").WriteAsync(context);
        }

        return handler(this)(context);
    }

    /// <summary>GET /admin/endpoints.</summary>
    public Task ListAsync(HttpContext context)
    {
        var administered = source.Administered;
        var data = administered.AllEndpoints.Select(e => Describe(e, administered)).ToList();
        return WriteAsync(context, StatusCodes.Status200OK, new EndpointList(data, administered.DefaultId, administered.Aliases.ToDictionary()));
    }

    /// <summary>GET /admin/endpoints/{**id}.</summary>
    public Task GetAsync(HttpContext context)
    {
        var id = RouteValue(context, "id");
        var administered = source.Administered;
        return administered.TryGet(id, out var endpoint)
            ? WriteAsync(context, StatusCodes.Status200OK, Describe(endpoint, administered))
            : OpenAIError.ModelNotFound(id).WriteAsync(context);
    }

    /// <summary>PUT /admin/endpoints/{**id}: registers or replaces the endpoint.</summary>
    public async Task PutAsync(HttpContext context)
    {
        var id = RouteValue(context, "id");
        if (string.IsNullOrWhiteSpace(id) || id != id.Trim())
        {
            await OpenAIError.InvalidRequest("Id: an endpoint id must be non-empty and must not start or end with white space.", "Id").WriteAsync(context);
            return;
        }

        var body = await ReadObjectAsync(context);
        if (body.Error is { } bodyError)
        {
            await bodyError.WriteAsync(context);
            return;
        }

        var json = body.Value!;
        string? sourcePath = null;
        foreach (var property in json.ToList())
        {
            if (string.Equals(property.Key, "SourcePath", StringComparison.OrdinalIgnoreCase))
            {
                sourcePath = property.Value?.GetValueKind() == JsonValueKind.String ? property.Value.GetValue<string>() : null;
                if (property.Value is not null && sourcePath is null)
                {
                    await OpenAIError.InvalidRequest("SourcePath: must be a string.", "SourcePath").WriteAsync(context);
                    return;
                }

                json.Remove(property.Key);
            }
        }

        ModelEndpointOptions definition;
        try
        {
            definition = json.Deserialize<ModelEndpointOptions>(s_definition)!;
        }
        catch (JsonException e)
        {
            await OpenAIError.InvalidRequest("The endpoint definition is invalid: " + e.Message, e.Path).WriteAsync(context);
            return;
        }

        if (definition.Id is not null && definition.Id != id)
        {
            await OpenAIError.InvalidRequest($"Id: the body's Id '{definition.Id}' differs from the id in the path '{id}'.", "Id").WriteAsync(context);
            return;
        }

        definition.Id = id;
        var errors = new List<(string Field, string Message)>();
        var endpoint = ModelEndpointValidator.Validate(definition, id, source.ClusterIds, (field, message) => errors.Add((field, message)));
        if (endpoint is null)
        {
            await OpenAIError.InvalidRequest($"Endpoint '{id}': " + string.Join("; ", errors.Select(e => e.Message)), errors[0].Field).WriteAsync(context);
            return;
        }

        var load = sourcePath is not null && endpoint.HasAdapter && adapters.IsVllm(endpoint.Cluster);
        var attempt = adapters.NextAttempt();
        var created = false;
        var change = source.Administer((administered, overlay) =>
        {
            var existing = administered.TryGet(id, out var old) ? old : null;
            var registeredAt = existing?.RegisteredAt ?? source.Time.GetUtcNow();
            var check = administered.Register(endpoint with { RegisteredAt = registeredAt });
            if (!check.Succeeded)
            {
                return AdminChange.Fail($"Endpoint '{id}': {check.Error}", FieldOf(check.Error));
            }

            created = existing is null;
            var next = overlay.Clone();
            var entry = new RuntimeEndpoint { Definition = definition, SourcePath = sourcePath, Created = registeredAt };
            var index = next.Endpoints.FindIndex(e => e.Definition.Id == id);
            if (index >= 0)
            {
                // Replacing keeps the aliases (seed semantics): those the old definition brought move to the overlay.
                foreach (var alias in next.Endpoints[index].Definition.Aliases ?? [])
                {
                    if (definition.Aliases?.Contains(alias) != true && !next.RemovedAliases.Contains(alias))
                    {
                        next.Aliases.TryAdd(alias, id);
                    }
                }

                next.Endpoints[index] = entry;
            }
            else
            {
                next.Endpoints.Add(entry);
            }

            next.Removed.Remove(id);
            next.Statuses.Remove(id);
            foreach (var alias in definition.Aliases ?? [])
            {
                next.Aliases.Remove(alias);
                next.RemovedAliases.Remove(alias);
            }

            if (definition.IsDefault)
            {
                next.Default = new DefaultOverride { Id = id };
            }

            return new AdminChange(next)
            {
                Conditions = c => c.WithAdapterLoad(id, load ? new AdapterLoadState(EndpointStatus.Loading, "the adapter is being loaded on every destination", attempt) : null),
            };
        });
        if (change.Error is not null)
        {
            await OpenAIError.InvalidRequest(change.Error, change.Field).WriteAsync(context);
            return;
        }

        Log.Changed(logger, created ? "registered" : "replaced", id);
        if (load)
        {
            adapters.StartLoad(id, endpoint.UpstreamModel, sourcePath!, endpoint.Cluster, attempt);
        }

        var after = source.Administered;
        await WriteAsync(context, created ? StatusCodes.Status201Created : StatusCodes.Status200OK, Describe(after.TryGet(id, out var now) ? now : endpoint, after));
    }

    /// <summary>DELETE /admin/endpoints/{**id}: unregisters (clears the default and its aliases, seed semantics).</summary>
    public async Task DeleteAsync(HttpContext context)
    {
        var id = RouteValue(context, "id");
        ModelEndpoint? removed = null;
        RuntimeEndpoint? runtime = null;
        var change = source.Administer((administered, overlay) =>
        {
            if (!administered.TryGet(id, out removed))
            {
                return AdminChange.Fail("", null, StatusCodes.Status404NotFound);
            }

            var next = overlay.Clone();
            runtime = next.FindEndpoint(id);
            next.Endpoints.RemoveAll(e => e.Definition.Id == id);
            next.Statuses.Remove(id);
            foreach (var alias in next.Aliases.Where(a => a.Value == id).Select(a => a.Key).ToList())
            {
                next.Aliases.Remove(alias);
            }

            if (next.Default?.Id == id || administered.DefaultId == id)
            {
                next.Default = new DefaultOverride { Id = null };
            }

            if (source.ConfiguredContains(id) && !next.Removed.Contains(id))
            {
                next.Removed.Add(id);
            }

            return new AdminChange(next) { Conditions = c => c.WithAdapterLoad(id, null) };
        });
        if (change.Error is not null)
        {
            await OpenAIError.ModelNotFound(id).WriteAsync(context);
            return;
        }

        Log.Changed(logger, "unregistered", id);
        if (runtime?.SourcePath is not null && removed!.HasAdapter && adapters.IsVllm(removed.Cluster))
        {
            adapters.StartUnload(removed.UpstreamModel, removed.Cluster);
        }

        await WriteAsync(context, StatusCodes.Status200OK, new Deleted(id, "model_endpoint", true));
    }

    /// <summary>PUT /admin/status/{**id} with <c>{"status":"Disabled"}</c>.</summary>
    public async Task SetStatusAsync(HttpContext context)
    {
        var id = RouteValue(context, "id");
        var body = await ReadObjectAsync(context);
        if (body.Error is { } bodyError)
        {
            await bodyError.WriteAsync(context);
            return;
        }

        var name = GetString(body.Value!, "status");
        if (name is null || !EndpointStatusExtensions.TryParse(name, out var status))
        {
            await OpenAIError.InvalidRequest($"Status: '{name}' is not one of Ready, Loading, Error, Disabled.", "status").WriteAsync(context);
            return;
        }

        var change = source.Administer((administered, overlay) =>
        {
            if (!administered.TryGet(id, out _))
            {
                return AdminChange.Fail("", null, StatusCodes.Status404NotFound);
            }

            var next = overlay.Clone();
            next.Statuses[id] = status.ToString();
            return new AdminChange(next);
        });
        if (change.Error is not null)
        {
            await OpenAIError.ModelNotFound(id).WriteAsync(context);
            return;
        }

        Log.Changed(logger, "status " + status.ToWireName(), id);
        var after = source.Administered;
        await WriteAsync(context, StatusCodes.Status200OK, Describe(after.TryGet(id, out var now) ? now : throw new InvalidOperationException(), after));
    }

    /// <summary>GET /admin/aliases.</summary>
    public Task ListAliasesAsync(HttpContext context) =>
        WriteAsync(context, StatusCodes.Status200OK, source.Administered.Aliases.OrderBy(a => a.Key, StringComparer.Ordinal).ToDictionary());

    /// <summary>PUT /admin/aliases/{**alias} with <c>{"target":"id"}</c>: adds the alias or moves it.</summary>
    public async Task PutAliasAsync(HttpContext context)
    {
        var alias = RouteValue(context, "alias");
        var body = await ReadObjectAsync(context);
        if (body.Error is { } bodyError)
        {
            await bodyError.WriteAsync(context);
            return;
        }

        var target = GetString(body.Value!, "target");
        if (string.IsNullOrEmpty(target))
        {
            await OpenAIError.InvalidRequest("Target: the endpoint id the alias points to is required.", "target").WriteAsync(context);
            return;
        }

        var change = source.Administer((administered, overlay) =>
        {
            var check = administered.Aliases.ContainsKey(alias) ? administered.MoveAlias(alias, target) : administered.AddAlias(alias, target);
            if (!check.Succeeded)
            {
                return AdminChange.Fail($"Alias '{alias}': {check.Error}", check.Error.StartsWith("Aliases: target", StringComparison.Ordinal) ? "target" : "alias");
            }

            var next = overlay.Clone();
            next.RemovedAliases.Remove(alias);
            next.Aliases[alias] = target;
            return new AdminChange(next);
        });
        if (change.Error is not null)
        {
            await OpenAIError.InvalidRequest(change.Error, change.Field).WriteAsync(context);
            return;
        }

        Log.Changed(logger, $"alias '{alias}' →", target);
        await WriteAsync(context, StatusCodes.Status200OK, new AliasEntry(alias, target));
    }

    /// <summary>DELETE /admin/aliases/{**alias}.</summary>
    public async Task DeleteAliasAsync(HttpContext context)
    {
        var alias = RouteValue(context, "alias");
        var change = source.Administer((administered, overlay) =>
        {
            if (!administered.Aliases.ContainsKey(alias))
            {
                return AdminChange.Fail("", null, StatusCodes.Status404NotFound);
            }

            var next = overlay.Clone();
            next.Aliases.Remove(alias);
            if (!next.RemovedAliases.Contains(alias))
            {
                next.RemovedAliases.Add(alias);
            }

            return new AdminChange(next);
        });
        if (change.Error is not null)
        {
            await OpenAIError.NotFound($"'{alias}' is not an alias.", "alias").WriteAsync(context);
            return;
        }

        Log.Changed(logger, "alias removed", alias);
        await WriteAsync(context, StatusCodes.Status200OK, new Deleted(alias, "alias", true));
    }

    /// <summary>PUT /admin/default with <c>{"id":"…"}</c> (null clears the default).</summary>
    public async Task PutDefaultAsync(HttpContext context)
    {
        var body = await ReadObjectAsync(context);
        if (body.Error is { } bodyError)
        {
            await bodyError.WriteAsync(context);
            return;
        }

        var node = body.Value!.FirstOrDefault(p => string.Equals(p.Key, "id", StringComparison.OrdinalIgnoreCase));
        if (node.Key is null || (node.Value is not null && node.Value.GetValueKind() != JsonValueKind.String))
        {
            await OpenAIError.InvalidRequest("Id: the default endpoint's id (a string, or null for no default) is required.", "id").WriteAsync(context);
            return;
        }

        var id = node.Value?.GetValue<string>();
        var change = source.Administer((administered, overlay) =>
        {
            var check = administered.SetDefault(id);
            if (!check.Succeeded)
            {
                return AdminChange.Fail(check.Error, "id");
            }

            var next = overlay.Clone();
            next.Default = new DefaultOverride { Id = id };
            return new AdminChange(next);
        });
        if (change.Error is not null)
        {
            await OpenAIError.InvalidRequest(change.Error, change.Field).WriteAsync(context);
            return;
        }

        Log.Changed(logger, "default set to", id ?? "(none)");
        await WriteAsync(context, StatusCodes.Status200OK, new DefaultEntry(id));
    }

    internal static bool IsAuthorized(string header, string key)
    {
        const string Scheme = "Bearer ";
        if (!header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        // Hashes have equal lengths, so the comparison takes the same time whatever the key's length.
        var given = SHA256.HashData(Encoding.UTF8.GetBytes(header[Scheme.Length..].Trim()));
        var expected = SHA256.HashData(Encoding.UTF8.GetBytes(key));
        return CryptographicOperations.FixedTimeEquals(given, expected);
    }

    internal static bool IsAdminPort(string? urls, int localPort)
    {
        if (string.IsNullOrWhiteSpace(urls))
        {
            return true;
        }

        foreach (var url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            // Kestrel's wildcard forms (http://*:9090, http://+:9090) are not valid URIs: read the port by hand.
            var colon = url.LastIndexOf(':');
            var end = url.IndexOf('/', colon + 1);
            var port = url[(colon + 1)..(end < 0 ? url.Length : end)];
            if (colon > url.IndexOf("//", StringComparison.Ordinal) && int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p == localPort)
            {
                return true;
            }
        }

        return false;
    }

    private static string FieldOf(string error)
    {
        var colon = error.IndexOf(':', StringComparison.Ordinal);
        return colon > 0 ? error[..colon] : "Id";
    }

    private static string RouteValue(HttpContext context, string name) =>
        Uri.UnescapeDataString(context.Request.RouteValues[name] as string ?? "");

    private static string? GetString(JsonObject body, string name)
    {
        foreach (var (key, value) in body)
        {
            if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
            {
                return value?.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;
            }
        }

        return null;
    }

    private static async Task<(JsonObject? Value, OpenAIError? Error)> ReadObjectAsync(HttpContext context)
    {
        try
        {
            var node = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
            return node is JsonObject obj ? (obj, null) : (null, OpenAIError.InvalidRequest("The request body must be a JSON object."));
        }
        catch (JsonException e)
        {
            return (null, OpenAIError.InvalidRequest("The request body is not valid JSON: " + e.Message));
        }
    }

    private AdminEndpoint Describe(ModelEndpoint administered, ModelRegistry registry)
    {
        var id = administered.Id.Value;
        var effective = source.Current.Router.Registry.TryGet(id, out var e) ? e : administered;
        var runtime = source.Overlay.FindEndpoint(id);
        return new AdminEndpoint(
            id,
            "model_endpoint",
            runtime is null ? "configuration" : "runtime",
            effective.Status.ToWireName(),
            administered.Status.ToWireName(),
            effective.StatusReason,
            administered.Cluster,
            administered.BaseModel,
            administered.Adapter,
            administered.UpstreamModel,
            effective.MaxContextLength,
            registry.DefaultId == id,
            registry.AliasesOf(id),
            administered.DisplayName,
            administered.Description,
            administered.RegisteredAt.ToUnixTimeSeconds(),
            runtime?.SourcePath);
    }

    private static Task WriteAsync<T>(HttpContext context, int status, T value)
    {
        context.Response.StatusCode = status;
        return context.Response.WriteAsJsonAsync(value, s_output, context.RequestAborted);
    }

    private sealed record EndpointList(IReadOnlyList<AdminEndpoint> Data, string? Default, Dictionary<string, string> Aliases)
    {
        [JsonPropertyOrder(-1)]
#pragma warning disable CA1822 // an instance member so System.Text.Json serializes it
        public string Object => "list";
#pragma warning restore CA1822
    }

    private sealed record AdminEndpoint(
        string Id,
        string Object,
        string Source,
        string Status,
        string AdministeredStatus,
        string? StatusReason,
        string Cluster,
        string BaseModel,
        string? Adapter,
        string UpstreamModel,
        int MaxContextLength,
        bool IsDefault,
        IReadOnlyList<string> Aliases,
        string DisplayName,
        string Description,
        long Created,
        string? SourcePath);

    private sealed record Deleted(string Id, string Object, [property: JsonPropertyName("deleted")] bool IsDeleted);

    private sealed record AliasEntry(string Alias, string Target);

    private sealed record DefaultEntry(string? Id);

    private static partial class Log
    {
        [LoggerMessage(40, LogLevel.Warning, "Refused an admin call without a valid admin key: {Method} {Path}", EventName = "AdminUnauthorized")]
        public static partial void Unauthorized(ILogger logger, string method, string path);

        [LoggerMessage(41, LogLevel.Information, "Admin change: {Change} '{Id}'.", EventName = "AdminChanged")]
        public static partial void Changed(ILogger logger, string change, string id);
    }
}
