using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using ModelRouting.Adapters;
using ModelRouting.Configuration;
using ModelRouting.Errors;
using ModelRouting.Health;
using ModelRouting.Registry;

namespace ModelRouting.Admin;

/// <summary>
/// The admin API's <c>/endpoints</c> and <c>/status</c> handlers: list and inspect endpoints, register/replace
/// and unregister them, set a status. Every change is validated like configuration and persisted before it
/// takes effect (<see cref="ModelRegistrySource.Administer"/>).
/// </summary>
internal sealed class EndpointHandlers(ModelRegistrySource source, VllmAdapterManager adapters, ILogger<EndpointHandlers> logger)
{
    /// <summary>GET /admin/endpoints.</summary>
    public Task ListAsync(HttpContext context) => AdminResponse.WriteAsync(context, StatusCodes.Status200OK, AdminResponse.List(source));

    /// <summary>GET /admin/endpoints/{**id}.</summary>
    public Task GetAsync(HttpContext context)
    {
        var id = AdminRequest.RouteValue(context, "id");
        var administered = source.Administered;
        return administered.TryGet(id, out var endpoint)
            ? AdminResponse.WriteAsync(context, StatusCodes.Status200OK, AdminResponse.Describe(source, endpoint, administered))
            : OpenAIError.ModelNotFound(id).WriteAsync(context);
    }

    /// <summary>PUT /admin/endpoints/{**id}: registers or replaces the endpoint.</summary>
    public async Task PutAsync(HttpContext context)
    {
        var id = AdminRequest.RouteValue(context, "id");
        if (string.IsNullOrWhiteSpace(id) || id != id.Trim())
        {
            await OpenAIError.InvalidRequest("Id: an endpoint id must be non-empty and must not start or end with white space.", "Id").WriteAsync(context);
            return;
        }

        var body = await AdminRequest.ReadObjectAsync(context);
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
            definition = json.Deserialize<ModelEndpointOptions>(AdminRequest.DefinitionJson)!;
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
            if (endpoint.Fallbacks.FirstOrDefault(f => !administered.TryGet(f, out _)) is { } unknown)
            {
                return AdminChange.Fail($"Endpoint '{id}': Fallbacks: '{unknown}' is not an endpoint id", "Fallbacks");
            }

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
                next.Default = DefaultOverride.Over(id, source.Configured);
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

        AdminLog.Changed(logger, created ? "registered" : "replaced", id);
        if (load)
        {
            adapters.StartLoad(id, endpoint.UpstreamModel, sourcePath!, endpoint.Cluster, attempt);
        }

        var after = source.Administered;
        await AdminResponse.WriteAsync(context, created ? StatusCodes.Status201Created : StatusCodes.Status200OK, AdminResponse.Describe(source, after.TryGet(id, out var now) ? now : endpoint, after));
    }

    /// <summary>DELETE /admin/endpoints/{**id}: unregisters (clears the default and its aliases, seed semantics).</summary>
    public async Task DeleteAsync(HttpContext context)
    {
        var id = AdminRequest.RouteValue(context, "id");
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
                next.Default = DefaultOverride.Over(null, source.Configured);
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

        AdminLog.Changed(logger, "unregistered", id);
        if (runtime?.SourcePath is not null && removed!.HasAdapter && adapters.IsVllm(removed.Cluster))
        {
            adapters.StartUnload(removed.UpstreamModel, removed.Cluster);
        }

        await AdminResponse.WriteAsync(context, StatusCodes.Status200OK, new Deleted(id, "model_endpoint", true));
    }

    /// <summary>PUT /admin/status/{**id} with <c>{"status":"Disabled"}</c>.</summary>
    public async Task SetStatusAsync(HttpContext context)
    {
        var id = AdminRequest.RouteValue(context, "id");
        var body = await AdminRequest.ReadObjectAsync(context);
        if (body.Error is { } bodyError)
        {
            await bodyError.WriteAsync(context);
            return;
        }

        var name = AdminRequest.GetString(body.Value!, "status");
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

        AdminLog.Changed(logger, "status " + status.ToWireName(), id);
        var after = source.Administered;
        await AdminResponse.WriteAsync(context, StatusCodes.Status200OK, AdminResponse.Describe(source, after.TryGet(id, out var now) ? now : throw new InvalidOperationException(), after));
    }

    private static string FieldOf(string error)
    {
        var colon = error.IndexOf(':', StringComparison.Ordinal);
        return colon > 0 ? error[..colon] : "Id";
    }
}
