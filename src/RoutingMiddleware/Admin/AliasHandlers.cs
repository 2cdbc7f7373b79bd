using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using ModelRouting.Configuration;
using ModelRouting.Errors;

namespace ModelRouting.Admin;

/// <summary>The admin API's <c>/aliases</c> handlers: list, add or move, and remove aliases.</summary>
internal sealed class AliasHandlers(ModelRegistrySource source, ILogger<AliasHandlers> logger)
{
    /// <summary>GET /admin/aliases.</summary>
    public Task ListAsync(HttpContext context) =>
        AdminResponse.WriteAsync(context, StatusCodes.Status200OK, source.Administered.Aliases.OrderBy(a => a.Key, StringComparer.Ordinal).ToDictionary());

    /// <summary>PUT /admin/aliases/{**alias} with <c>{"target":"id"}</c>: adds the alias or moves it.</summary>
    public async Task PutAsync(HttpContext context)
    {
        var alias = AdminRequest.RouteValue(context, "alias");
        var body = await AdminRequest.ReadObjectAsync(context);
        if (body.Error is { } bodyError)
        {
            await bodyError.WriteAsync(context);
            return;
        }

        var target = AdminRequest.GetString(body.Value!, "target");
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

        AdminLog.Changed(logger, $"alias '{alias}' →", target);
        await AdminResponse.WriteAsync(context, StatusCodes.Status200OK, new AliasEntry(alias, target));
    }

    /// <summary>DELETE /admin/aliases/{**alias}.</summary>
    public async Task DeleteAsync(HttpContext context)
    {
        var alias = AdminRequest.RouteValue(context, "alias");
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

        AdminLog.Changed(logger, "alias removed", alias);
        await AdminResponse.WriteAsync(context, StatusCodes.Status200OK, new Deleted(alias, "alias", true));
    }
}
