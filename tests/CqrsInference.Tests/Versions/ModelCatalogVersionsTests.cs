using CqrsInference.Commands.Models;

namespace CqrsInference.Tests.Versions;

/// <summary>The manifest's rules for several versions of a model, and how the catalog answers for them.</summary>
public sealed class ModelCatalogVersionsTests : IDisposable
{
    private readonly string _manifest = Path.Combine(Path.GetTempPath(), $"cqrsi-versions-{Guid.NewGuid():N}.json");

    public void Dispose() => File.Delete(_manifest);

    /// <summary>A manifest of model <c>m</c> with one entry per given routing fields (JSON members after the version).</summary>
    private ModelCatalog Load(params string[] versions)
    {
        var entries = versions.Select((fields, i) => $$"""
            { "name": "m", "runner": "tensor", "file": "m.onnx",
              "inputs": [{ "name": "x", "datatype": "FP32", "shape": [-1, 4] }],
              "outputs": [{ "name": "y", "datatype": "FP32", "shape": [-1, 3] }], {{fields}} }
            """);
        File.WriteAllText(_manifest, $"[{string.Join(",", entries)}]");
        return ModelCatalog.Load(_manifest, Path.GetTempPath());
    }

    private string LoadError(params string[] versions) => Should.Throw<InvalidDataException>(() => Load(versions)).Message;

    [Fact]
    public void A_models_only_version_is_its_default_without_saying_so()
    {
        var catalog = Load("""  "version": "1" """);

        catalog.TryGet("m", out var model).ShouldBeTrue();
        model.Version.ShouldBe("1");
        catalog.VersionsOf("m").ShouldHaveSingleItem().IsDefault.ShouldBeTrue();
    }

    [Fact]
    public void Several_versions_answer_the_default_by_name_each_by_version_and_the_list_with_routing()
    {
        var catalog = Load(""" "version": "1", "default": true, "weight": 90 """, """ "version": "2", "weight": 10, "timeoutMs": 500 """, """ "version": "0", "state": "retired" """);

        catalog.TryGet("m", out var byName).ShouldBeTrue();
        byName.Version.ShouldBe("1");
        catalog.TryGet("m", "2", out var two).ShouldBeTrue();
        two.ExecutionTimeoutMs.ShouldBe(500);
        catalog.TryGet("m", "3", out _).ShouldBeFalse();
        catalog.All.ShouldHaveSingleItem().Version.ShouldBe("1");
        catalog.AllVersions.Select(v => v.Version).ShouldBe(["1", "2", "0"]);
        catalog.VersionsOf("m").Select(v => (v.Version, v.IsDefault, v.Weight, v.State))
            .ShouldBe([("1", true, 90, "serving"), ("2", false, 10, "serving"), ("0", false, 0, "retired")]);
        catalog.ServingVersionsOf("m").ShouldBe(["1", "2"]);
        catalog.VersionsOf("other").ShouldBeEmpty();
    }

    [Fact]
    public void A_pinned_version_resolves_to_itself_and_an_unknown_or_retired_one_names_the_served_versions()
    {
        var catalog = Load(""" "version": "1", "default": true """, """ "version": "2" """, """ "version": "0", "state": "retired" """);

        catalog.Resolve("m", "2", Guid.NewGuid()).ShouldBe(new VersionResolution.Resolved(catalog.AllVersions[1], Pinned: true));
        catalog.Resolve("m", null, Guid.NewGuid()).ShouldBeOfType<VersionResolution.Resolved>().Model.Version.ShouldBe("1");
        catalog.Resolve("x", null, Guid.NewGuid()).ShouldBe(new VersionResolution.UnknownModel("x"));
        catalog.Resolve("m", "9", Guid.NewGuid()).ShouldBeOfType<VersionResolution.VersionNotServed>()
            .Detail.ShouldBe("Version '9' of model 'm' is not served here; the served versions are: 1, 2.");
        catalog.Resolve("m", "0", Guid.NewGuid()).ShouldBeOfType<VersionResolution.VersionNotServed>()
            .Detail.ShouldBe("Version '0' of model 'm' is retired; the served versions are: 1, 2.");
    }

    [Fact]
    public void A_90_10_split_sends_each_job_to_the_same_version_every_time_and_shares_2000_ids_within_3_percent()
    {
        var catalog = Load(""" "version": "1", "default": true, "weight": 90 """, """ "version": "2", "weight": 10 """);
        var ids = Enumerable.Range(0, 2000).Select(_ => Guid.CreateVersion7()).ToList();

        var versions = ids.Select(id => ((VersionResolution.Resolved)catalog.Resolve("m", null, id)).Model.Version).ToList();

        (versions.Count(v => v == "2") / 2000.0).ShouldBe(0.10, 0.03);
        ids.Select(id => ((VersionResolution.Resolved)catalog.Resolve("m", null, id)).Model.Version).ShouldBe(versions);
    }

    [Fact]
    public void A_version_listed_twice_stops_the_load() =>
        LoadError(""" "version": "1", "default": true """, """ "version": "1" """)
            .ShouldBe("Model 'm' lists version '1' 2 times; each version appears once.");

    [Fact]
    public void Two_defaults_stop_the_load() =>
        LoadError(""" "version": "1", "default": true """, """ "version": "2", "default": true """)
            .ShouldBe("Model 'm' marks versions 1, 2 as default; mark exactly one \"default\": true.");

    [Fact]
    public void Several_versions_without_a_default_stop_the_load() =>
        LoadError(""" "version": "1" """, """ "version": "2" """)
            .ShouldBe("Model 'm' has versions 1, 2 and none is the default; mark exactly one \"default\": true.");

    [Fact]
    public void A_retired_default_stops_the_load() =>
        LoadError(""" "version": "1", "default": true, "state": "retired" """, """ "version": "2" """)
            .ShouldBe("Model 'm''s default version '1' is retired; the default must be serving.");

    [Fact]
    public void Weights_that_do_not_sum_to_100_stop_the_load() =>
        LoadError(""" "version": "1", "default": true, "weight": 90 """, """ "version": "2", "weight": 20 """)
            .ShouldStartWith("The weights of model 'm''s serving versions sum to 110;");

    [Fact]
    public void A_weight_on_a_retired_version_stops_the_load() =>
        LoadError(""" "version": "1", "default": true, "weight": 100 """, """ "version": "2", "weight": 5, "state": "retired" """)
            .ShouldBe("Version '2' of model 'm' is retired but has weight 5; only serving versions take unpinned jobs.");

    [Fact]
    public void An_unknown_state_stops_the_load() =>
        LoadError(""" "version": "1", "state": "paused" """)
            .ShouldBe("Version '1' of model 'm' has state 'paused'; the states are: serving, retired, shadow.");

    [Fact]
    public void A_version_with_other_inputs_stops_the_load()
    {
        File.WriteAllText(_manifest, """
            [{ "name": "m", "version": "1", "default": true, "runner": "tensor", "file": "m.onnx",
               "inputs": [{ "name": "x", "datatype": "FP32", "shape": [-1, 4] }], "outputs": [{ "name": "y", "datatype": "FP32", "shape": [-1, 3] }] },
             { "name": "m", "version": "2", "runner": "tensor", "file": "m.onnx",
               "inputs": [{ "name": "x", "datatype": "FP32", "shape": [-1, 5] }], "outputs": [{ "name": "y", "datatype": "FP32", "shape": [-1, 3] }] }]
            """);

        Should.Throw<InvalidDataException>(() => ModelCatalog.Load(_manifest, Path.GetTempPath())).Message
            .ShouldStartWith("Version '2' of model 'm' has inputs or outputs that differ from version '1''s;");
    }

    [Theory]
    [InlineData("FP32", "base64")]
    [InlineData("BYTES", "hex")]
    public void An_encoding_other_than_base64_on_bytes_stops_the_load(string datatype, string encoding)
    {
        File.WriteAllText(_manifest, $$"""
            [{ "name": "m", "version": "1", "runner": "tensor", "file": "m.onnx",
               "inputs": [{ "name": "x", "datatype": "{{datatype}}", "shape": [-1, 4], "encoding": "{{encoding}}" }], "outputs": [{ "name": "y", "datatype": "FP32", "shape": [-1, 3] }] }]
            """);

        Should.Throw<InvalidDataException>(() => ModelCatalog.Load(_manifest, Path.GetTempPath())).Message
            .ShouldBe($"Tensor 'x' of model 'm' has encoding '{encoding}'; the only encoding is 'base64', on a BYTES tensor.");
    }

    [Fact]
    public void A_version_whose_input_encoding_differs_stops_the_load()
    {
        File.WriteAllText(_manifest, """
            [{ "name": "m", "version": "1", "default": true, "runner": "tensor", "file": "m.onnx",
               "inputs": [{ "name": "x", "datatype": "BYTES", "shape": [1], "encoding": "base64" }], "outputs": [{ "name": "y", "datatype": "FP32", "shape": [-1, 3] }] },
             { "name": "m", "version": "2", "runner": "tensor", "file": "m.onnx",
               "inputs": [{ "name": "x", "datatype": "BYTES", "shape": [1] }], "outputs": [{ "name": "y", "datatype": "FP32", "shape": [-1, 3] }] }]
            """);

        Should.Throw<InvalidDataException>(() => ModelCatalog.Load(_manifest, Path.GetTempPath())).Message
            .ShouldStartWith("Version '2' of model 'm' has inputs or outputs that differ from version '1''s;");
    }

    [Fact]
    public void A_version_label_outside_the_alphabet_stops_the_load() =>
        LoadError(""" "version": "1 beta" """).ShouldStartWith("Model 'm' has version '1 beta'; a version is 1 to 63 characters");

    [Fact]
    public void A_shadow_version_is_found_by_ShadowOf_takes_no_job_and_a_model_has_at_most_one()
    {
        var catalog = Load(""" "version": "1", "default": true """, """ "version": "2", "state": "shadow" """);

        catalog.ShadowOf("m").ShouldNotBeNull().Version.ShouldBe("2");
        catalog.ServingVersionsOf("m").ShouldBe(["1"]);
        catalog.Resolve("m", "2", Guid.NewGuid()).ShouldBeOfType<VersionResolution.VersionNotServed>().Retired.ShouldBeFalse();
        Load(""" "version": "1" """).ShadowOf("m").ShouldBeNull();
        LoadError(""" "version": "1", "default": true """, """ "version": "2", "state": "shadow" """, """ "version": "3", "state": "shadow" """)
            .ShouldContain("at most one shadow version");
        LoadError(""" "version": "1", "state": "shadow" """).ShouldContain("the default must be serving");
    }

    [Fact]
    public void Comparison_rules_are_read_per_output_and_an_unusable_rule_or_unknown_output_stops_the_load()
    {
        var catalog = Load(""" "version": "1", "comparison": { "y": { "rule": "tolerance", "tolerance": 0.01 } } """);

        catalog.AllVersions[0].Comparison.ShouldNotBeNull()["y"].ShouldBe(new OutputRule { Rule = OutputRule.WithinTolerance, Tolerance = 0.01 });
        LoadError(""" "version": "1", "comparison": { "z": { "rule": "exact" } } """).ShouldContain("'z', which is not one of its outputs (y)");
        LoadError(""" "version": "1", "comparison": { "y": { "rule": "tolerance" } } """).ShouldContain("needs a 'tolerance'");
        LoadError(""" "version": "1", "comparison": { "y": { "rule": "nearly" } } """).ShouldContain("the rule 'nearly' is unknown");
    }
}
