using System.Security.Cryptography;
using System.Text.Json.Nodes;
using IlgpuVae.Host;

namespace IlgpuVae.Tests;

/// <summary>
/// Behaviour pinned bit for bit: every model kind and every Table 1 preset trains a short run (a few dozen steps on
/// small data, CPU accelerator, seed 1) and is evaluated; the SHA-256 of the checkpoint's model.safetensors and of
/// eval.json must be those recorded before the model layer was rebuilt (2026-12-02, commit e341647). A change that
/// moves code without meaning to change what it computes keeps every hash. The same hashes came out with 2 and 4
/// threads per CPU group (DOTNET_PROCESSOR_COUNT=4), so they do not depend on the machine's core count.
/// Run folders saved by that build (tests/Golden/runs) must still load and evaluate to the same eval.json.
/// One intended change since: eval.json names a model's terms ("Terms") where they are not the ELBO's (the IWAE's
/// −L_k, the Deep VIB's cross-entropy, sampled KL terms, ...). The eval hashes of those 18 runs were re-recorded
/// then, after checking that each new eval.json is the old one byte for byte once its Terms block is removed; the
/// model.safetensors hashes and the other 9 eval hashes did not change.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class GoldenRunTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("ilgpuvae-golden-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    /// <summary>One golden run: the train options after the common ones, the eval options (eval always runs on
    /// the run folder), and the two hashes.</summary>
    public sealed record GoldenRun(string Train, string Eval, string ModelSha256, string EvalSha256);

    /// <summary>Small models on 4×5 images (20 features): 42 training images, 9 test images.</summary>
    private const string Small = "--hidden 8 --latent 3 --batch-size 6 --epochs 3";
    private const string SmallTwoLayers = "--hidden 7 --latent 4 --hidden2 5 --latent2 2 --batch-size 6 --epochs 3";

    public static readonly IReadOnlyDictionary<string, GoldenRun> Runs = new Dictionary<string, GoldenRun>
    {
        ["vae"] = new($"{Small}", "--k 7 --surgery",
            "58caa3fcf1bbba94302a104f745436408e8b588d6543f5cf8c90d7b8d9cde320",
            "dcfdf54ae2a76934de912d6ecad2b4b594a264b0b8e446db3d287972e6e501da"),
        ["vae-gaussian-static-clip"] = new($"{Small} --likelihood gaussian --gaussian-c 0.5 --activation tanh --binarize static --clip-grad-norm 2",
            "--k 7",
            "b0a70c0ec1a4a92f9c58233e9341ceacaa0ecd36351c4f9af682413adea89aea",
            "0da1ba0540b5dd1436da1dd16f966570f2d8c2b01461da4cdfb1a2d880d333e0"),
        ["beta-vae-k3-warmup"] = new($"{Small} --beta 4 --warmup-epochs 2 --k 3 --activation sigmoid --binarize dynamic",
            "--k 7",
            "6a495bf3467c5f6c05a19b637c501d3cddc6619e0574ff612a0136bf08b760dc",
            "689597ecaa35d0c6e50978affd7471b8206d0a1637bb264f580ab95dcc7132d4"),
        ["iwae-k4"] = new($"{Small} --model iwae --k 4 --binarize dynamic", "--k 7",
            "1b9301b28f4558df34945f0201886fc567cda85f09c1c60a7338f70072fc0ef0",
            "1a59cf5d4a2852968ba1a3e1cb2a40ae99dd5ab3ebfeaec3d1ddab2f3e96c01d"),
        ["ae"] = new($"{Small} --model ae --likelihood gaussian", "",
            "0ea09f196cedf28977310f98eeb8195554d4c6fa35035f3f165d575078db58cd",
            "937906d886033e2f43386cfc9e08c880e48a96c899314b85fda343c16f3888d2"),
        ["infovae-gaussian"] = new($"{Small} --model infovae --mmd-lambda 100", "--k 7",
            "ad5c0fcef97653a9e1c334d6c05946e73d0f222392214e4fab43e47c79d26e42",
            "b6153787fb61c610fd105eb496df53a3a0455e499d00f3bc0eb6e64ba9d4c4ce"),
        ["infovae-imq-beta"] = new($"{Small} --model infovae --mmd-kernel imq --beta 0.5", "--k 7",
            "b37bd554e2d1c673db92fc7e44019a7864b19398e1b17101dc8b27288ba206db",
            "311dbcbeabc3b0ecd9e7d3917ddf7dd4f8a195478e559a4d5c294523dec16501"),
        ["target-rate"] = new($"{Small} --target-rate 2", "--k 7",
            "ad829c06eb564017fcd53a448761adff3fe2469690ac36d992e3a1af4320e79a",
            "354dbe33ff77502cec6009ab816749811ce15234a83f05f9fe0bab0f81793861"),
        ["vib"] = new($"{Small} --model vib --beta 0.01 --k 2", "",
            "ebeb3347597e0ae76da3c6cdff2e8c363cd18f6bd81f28214d22006a9ee27e2b",
            "870bce20448d641e8c473b86faf08cffd79f478f0ac0c146b12406cebce9b749"),
        ["vcca"] = new($"{Small} --model vcca --k 2", "--k 7",
            "43e479d621cecbea8e69ee728bdc00ca44dfaaa68702863f27de460c4bfddcc1",
            "91904e42b9ae6bc021d88e20b2948c814e98d88358e541e4216b5a85a71db167"),
        ["vae-2layer-k2"] = new($"{SmallTwoLayers} --stochastic-layers 2 --k 2 --activation tanh", "--k 7 --surgery",
            "cc593c832ecf66b4d13839ca862fb9a1118fd077cf18739d3934d344d7f31030",
            "2e0134703486a1bb623d988d812370bb8aaee63f43c125e0a3665bdd166e53c1"),
        ["iwae-2layer-k3"] = new($"{SmallTwoLayers} --model iwae --stochastic-layers 2 --k 3 --binarize dynamic", "--k 7",
            "2d4ff08a4cc344439710973899fefb197819b45fa0ea1ffcb2d3af47d8d0c809",
            "4a929dd3acbeec0abe3031b5a8fe781f5b86f22661a45256e033c24ff494fc91"),
        ["ladder-warmup"] = new($"{SmallTwoLayers} --model ladder --k 2 --warmup-epochs 2", "--k 7 --surgery",
            "1d804dbc2a37c2488fb4be67e800207ba3c393de751dfa1917eaf8478f5ab1d0",
            "6ade9d801509366d679edb1a27a209638a35b13889383799d1befd88b73c77fc"),
        ["ladder-no-norm"] = new($"{SmallTwoLayers} --model ladder --batch-norm false", "--k 7",
            "e5e3b85ee753da644dc46fd5a2c5456d8294c9a8f1ed3d12980e49292680d744",
            "485d39e1a51b043b6521e7810027bc33163dcb144eabe55cd93bd1cc755c60c4"),
        ["ladder-3-rank1-softplus"] = new($"{SmallTwoLayers} --model ladder --ladder-layers 3 --ladder-variance softplus --covariance rank1 --k 2 --warmup-epochs 2", "--k 7 --surgery",
            "86810564a27b0c001c0f8c092d999342b1313c9f429a232bc21f425bd5bbe471",
            "10888968fd38c78fbce704962b005d25b944c1c8b258703fe71a418885394d0d"),
        ["ladder-3-softplus"] = new($"{SmallTwoLayers} --model ladder --ladder-layers 3 --ladder-variance softplus --k 2", "--k 7",
            "4ecaa7aac9cc937157a53f98c277fe76f70df787390399d8de8ad9845a1f25ab",
            "d4f0337b20dad2078af23050359b5abcd7b4f9864680f348c62f519f6d071372"),
        ["vae-double"] = new($"{Small} --precision double --binarize dynamic", "--k 7",
            "dda1fd20ea009e82186970b54ea88270ebda358efa0c2a20ef792b88a69bbd14",
            "947f8eac8c78fddfb985f1f16ed7676be955fe66f4b6c3158e0d9bdd10b0c855"),
        ["iwae-2layer-double"] = new($"{SmallTwoLayers} --model iwae --stochastic-layers 2 --k 2 --precision double", "--k 7",
            "3fcce5f4e6b610db9e44fc778b1eeac5686a5adfce79e77aacade8b09992b399",
            "040fbdbab6e9d57aa49dc2e495107a556db0b78d97c6a937634a4e85b098a40e"),
        ["vae-simple-dense"] = new($"{Small} --dense simple --k 2", "--k 7",
            "9a8801d1066f87cd0fd283d6206a2d0280b6748bd20e2ed8a9e4807a31afc12f",
            "8da562f37430a4d1ac20674c12a05ee78691f482816bb734940ab8bc12c1c91b"),
        // Families added after the rebuild, recorded when each was finished: the VLAE (2026-12-02).
        ["vlae-warmup"] = new("--hidden 8 --latent 3 --batch-size 6 --epochs 3 --model vlae --latent-layers 3 --warmup-epochs 2", "--k 7 --surgery",
            "0587368ecfe3dd7762358f8155e1c016d88565258308094860266e3e636d5efe",
            "560966187cfae6ce95d76341c295287ed148110b29eadb2d580a735c64c00baa"),
        ["vlae-k2-gaussian"] = new("--hidden 8,6 --latent 4 --batch-size 6 --epochs 3 --model vlae --latent-layers 2 --k 2 --likelihood gaussian --activation tanh", "--k 7",
            "25764b4016756d585b6f5956a344e7be5a749e2c7446f2d92192038cc530d1e9",
            "fbbe180e99d0eb19bfa2d58b38ab93e42a5d34fb66b11391d083f78014823809"),
        // The rank-one covariance, VCCA's q(z|x, y), VCCA-private, the weight prior and planar flows (2026-12-02).
        ["vae-rank1-k2"] = new($"{Small} --covariance rank1 --k 2 --binarize dynamic", "--k 7 --surgery",
            "50b4e5d234d5e90431dc7bb0dadfb906ff62bd94a459bfc97f2d51e540ca5864",
            "c05cf0ada1e7cab47de5f5c8bed4f5c94c5824832e95b245c985037b73a3408e"),
        ["iwae-rank1-k3"] = new($"{Small} --model iwae --covariance rank1 --k 3", "--k 7",
            "67ace1418e1813bea999b866eea5328da5a6daa66e44c10224e2956368f644f9",
            "31c8c721d0843d6224ceda4d93a17a1a5c1ad5bc22b0925613534f3bbb49c99a"),
        ["vcca-both-views"] = new($"{Small} --model vcca --encoder-views 2 --k 2", "--k 7",
            "03a3625ac930bf2c98c99da0cc2e5fffbcf164078517da697dbb71c10e4a2d7c",
            "bfca78824f99f43463b10c6816dca4eb2508641b665586e6f4d850d97febf7f7"),
        ["vae-2layer-rank1"] = new($"{SmallTwoLayers} --stochastic-layers 2 --covariance rank1 --k 2", "--k 7 --surgery",
            "bc6a061e364f0b3e66e49442589ca8054361147d8340a2414134c3b30d67f896",
            "a6685640d2e594f08112903913440c23afe85a59a0b930e4fedb53a128f57ba5"),
        ["corex-stacked"] = new($"{SmallTwoLayers} --model corex --stochastic-layers 2 --anchors 1 --k 2", "--k 7 --surgery",
            "5f49b4f68305d8f4a49355be951870aa25f95ab023af151863ed025902f655d2",
            "9a4f8bb7adcc155e39da3ff7725804bc174ebf0526d3a3dd890ed85e2b552cd6"),
        ["vlae-rank1"] = new("--hidden 8 --latent 3 --batch-size 6 --epochs 3 --model vlae --latent-layers 3 --covariance rank1", "--k 7",
            "91eb30617fbcfdd97f445d4089fd3c8ba332348e73f65129bf58dd75f87c9475",
            "5cf5db03be728e19e3e0cc523b613cc8cd0a1188718dd7a96a7f687e40594b5a"),
        ["vcca-private-rank1"] = new($"{Small} --model vcca --private-latent 2 --covariance rank1 --k 2", "--k 7",
            "3092f6f279447223f351bb31efad58142edeb9fa6c8a715ab5dc3c92c0595dcf",
            "fe91270f86c836a9dc4d7c9a82f07c660a3827a5f1511f16253b939999193ac8"),
        ["vcca-private"] = new($"{Small} --model vcca --private-latent 2 --k 2 --warmup-epochs 2", "--k 7",
            "5983dee1cf0c1cfd1deaf9e5d1e5bcec7939cc64d5073a49c3a97b2722645ac8",
            "844d13bd995081c501ff1dfd0d5186b5cd8a4723229570fab9ec34836a68a743"),
        ["vae-weight-prior"] = new($"{Small} --weight-prior 0.5", "--k 7",
            "fd09321b4b57e773d631a9490fc7818d945fbf4ee289872fbb154544d5fff721",
            "a3f52b0472bd6c3a151c4afec4161a36fdcdf89b22e28433f253d53f429ebb43"),
        ["vae-planar-flow-k2"] = new($"{Small} --flow-length 2 --k 2", "--k 7",
            "ad379f5eca4c393c58fc9f7c2ad0187d6303a7d6659bc25ab4b0f732b9180557",
            "b4bbfc5c8abd81bbeb7effac92f13a5663bbb6e202c00c552ed807f3b8389523"),
        // Learned priors: a mixture of 4 Gaussians with k = 2, and the VampPrior with 3 pseudo-inputs and warm-up (2026-12-02).
        ["vae-mog-k2"] = new($"{Small} --prior mog:4 --k 2", "--k 7 --surgery",
            "2fbb3f5d9bd339c94b6173931aec1d7ca90c7f0607736d43299720d816e6cfb5",
            "fcd0f1dff9a5773b5599995ab0f136fcfa0fe310fa202c34b5d6e714c05aa5b7"),
        ["vae-vamp-warmup"] = new($"{Small} --prior vamp:3 --warmup-epochs 2", "--k 7 --surgery",
            "1e132825860f060a8e7ec23ffc0fe25843a8313a374698be527d06a68e9d4621",
            "749afbd57acc5922d7c41a4778ade311192f403f84dca79da7b0b620dbb988e6"),
        ["iwae-vamp-k3"] = new($"{Small} --model iwae --prior vamp:2 --k 3", "--k 7",
            "5642445542084a08f0c93e87a7d7b826bf271489e60257d031bec9a5577afcd9",
            "6e1fad6ca25b89ef6e4c9a1e1b178653dd7d083497b2a239ce13b7ac21445e7d"),
        // Auto-encoding CorEx, plain and with an anchor (2026-12-02).
        ["corex"] = new($"{Small} --model corex --k 2", "--k 7 --surgery",
            "5525c3e660b5ef05bc7c604800c236bee10be7ca5a1de06617a972fbfdecfe84",
            "834ec29071c0a53cd93c27a2347c74029f97ed6c4d948f24492b7f6af601c613"),
        ["corex-anchor-warmup"] = new($"{Small} --model corex --anchors 1 --anchor-weight 0.6 --warmup-epochs 2", "--k 7",
            "998485d46f3f6c411fdee62c8a1c46e690373922b5c665bb75fb9859029bd065",
            "483f5d4f972ea619dd22b2c11d6f5c6a8cd6f94caabff3f5da45e7ca812721a1"),
        // The mutual autoencoder, Bernoulli (REINFORCE) and Gaussian (pathwise) (2026-12-02).
        ["mae"] = new($"{Small} --model mae --mutual-information 2 --mi-weight 5", "--k 7",
            "b07f6bbad7f7c9300c29648f91f688ba4546598b905860d3e4d570e41e79de3e",
            "431a1ffd7fa0713a7f24a8b4ab91b6e99a890d49d75abe62514cb710dfe154b1"),
        ["mae-gaussian-k2"] = new($"{Small} --model mae --likelihood gaussian --k 2", "--k 7",
            "644488b694d9a469af99cf4e6626a19619f9cb0b984bc873ae3bba2198f65167",
            "e71f03d3a7e241337bd78c3d0ed89013ab1c3991021e153859a6cc253ef0ebea"),
        // Rank-one q(z|x) in the other one-layer models: the mutual autoencoder (Bernoulli), the InfoVAE, the Deep VIB.
        ["mae-rank1"] = new($"{Small} --model mae --mutual-information 2 --covariance rank1", "--k 7",
            "0c75513230785647e68dcfbcbd0e4bd831067ffe16336284c031b5f4a9f9e39d",
            "81a3f4299dba8168ad69dd5a7799a8eb0fff75d29e7768975356b38a19486d28"),
        ["infovae-rank1"] = new($"{Small} --model infovae --covariance rank1", "--k 7",
            "b9fb4fa99421192abcdaa4c0ed72b8a42a4cbc083cb0c15939b3528d6269f4a6",
            "a4fbe4f1fe71606024ac3682076014326f07e358c0b68d649b88ab3616e320fe"),
        // CorEx rank-one's two runs were re-recorded the day they were added: their checkpoints had split the learned
        // marginals [m | log s²] as if rank-one posteriors (losing rows where 2K is not a multiple of 3, which moved
        // the stacked run's eval.json); only posteriors' stats split now.
        ["corex-rank1"] = new($"{Small} --model corex --covariance rank1 --k 2", "--k 7",
            "4ab59cb387139745c3b02bf4cd8663c81984418768d8c41921408c1217fc5a8e",
            "6b935270162a06105a6d54956459b0e99bfbfc5a5e465e7e844cf4eb880922b4"),
        ["corex-stacked-rank1"] = new($"{SmallTwoLayers} --model corex --stochastic-layers 2 --covariance rank1", "--k 7",
            "6474d2af9f274a16dcaaef0c20bbe5258333c3018f9ea9860757daae4ed6a79f",
            "ab89bb257a5eafd6aacb49922f7335bf04feb26940ddbf11516f8a2c09d1aebb"),
        ["vae-flow-2-rank1"] = new($"{Small} --flow-length 2 --covariance rank1 --k 2", "--k 7",
            "e0aefee177aa81bcabc915cce9d04d691d5e378e666af95ab72f8bf0fc1d8830",
            "6b3c5e29d3cb1a649a994c94405796e729b7fd1057c73cb4bf79c9975fa0d855"),
        ["hvm-flow-1-rank1"] = new($"{Small} --model hvm --flow-length 1 --covariance rank1", "--k 7 --surgery",
            "6d99819f338ad9b13391df9eb2abe39793856c978d7ee3c975d8645b056814db",
            "86e57a41f2e14baa755e930049144b4d82a0d402a49d1a4caba0ac8581a81d09"),
        ["vib-rank1-k2"] = new($"{Small} --model vib --beta 0.01 --k 2 --covariance rank1", "",
            "2d2d03d24295559c826dfcfe0ac9ca2f2210bb501a4c1648c5079ec4cce112d6",
            "58566a17d3daf4eb6266463d69be2a69208204b66347b66dc30602d67c73fb7d"),
        // The hierarchical variational model, with two flow steps and warm-up, and with none and k = 2 (2026-12-02).
        ["hvm-flow-2"] = new($"{Small} --model hvm --flow-length 2 --warmup-epochs 2", "--k 7",
            "11aea99938fd7db03def783ffc2c5ff6100b3590624173967131a8266a1c0ac4",
            "89b49d4daccb48aac137e736b4c73853873a3b0f44569c88f609c14a1427a814"),
        ["hvm-inverse-flow"] = new($"{Small} --model hvm --flow-length 1 --auxiliary-flow-length 2 --k 2", "--k 7",
            "7a98617ed511d3d5283e26feac66d6a2c1a4f626e291321a6e1045cde4ae868f",
            "56432e8cbfa081baba11e37f597a48e8533affbab7024c568b2c73d910e5f8f3"),
        ["hvm-k2"] = new($"{Small} --model hvm --k 2", "--k 7 --surgery",
            "e187facd8b5da4b31e86f31cc4ed63300b46d584b11231c466605caec16bd573",
            "98b24400db0740fccae88fbc9d0b6d47a06a04d96dd0ec645a1515b6c43bc287"),
        // The sigmoid belief network (2026-12-03): a hidden layer each way, and NVIL's linear layers with k = 2.
        ["sbn"] = new($"{Small} --model sbn", "--k 7",
            "763702da0eb230840d3506e373566a6680f89b6bbb7ed7cff35831f9ada63c0d",
            "75345c8272c12ff8971b6343ad716907f835f715b94367c27a34993690642aab"),
        ["sbn-linear-k2"] = new("--hidden none --latent 5 --batch-size 6 --epochs 3 --model sbn --k 2", "--k 7",
            "c9ae7d3a0b3b6d08f03b790ce69147c0b5cfbe3cb156e48a3551c076a446d716",
            "f0c80eeb60600b747d09e21e20db21bc9c6e29d5cc12b2b93bf4270d8c9a1b8b"),
        // Two layers of binary units, linear between them (2026-12-03).
        ["sbn-2layer"] = new("--hidden 8 --latent 4 --hidden2 none --latent2 3 --batch-size 6 --epochs 3 --model sbn --stochastic-layers 2", "--k 7",
            "8ea6d9188e6c405bcb03746bdc61e2a5f0f9c93b03db712caf4d44a39f09f0d9",
            "85beef7789251564e7edc66003a29e217bc33697e0193d83b2fcc9e7fa9e6e88"),
        // DARN (2026-12-03): linear layers with 6 autoregressive units, and a hidden layer each way with k = 2. The
        // model hashes were re-recorded the same day when the masked layers' (zero) biases joined the checkpoint;
        // eval.json did not change.
        ["darn"] = new("--hidden none --latent 6 --batch-size 6 --epochs 3 --model darn", "--k 7",
            "ed5f8e0debf04bc0e569736c4e14204b4e6278a7d5337e3ece053bafef83f01b",
            "3b07379368cc034156865cdc102062c69fd7c61eefa051e7f887b4fe893489e9"),
        ["darn-hidden-k2"] = new($"{Small} --model darn --k 2", "--k 7",
            "0c0923e1a35b8d0e3a0e2ef493625e3561c2a32218b319371b41c3f16d960ac8",
            "e7b5b4b76d723b59d32db61219a878c73762e2ff37fcaf4b2d339a609a64f6e1"),
        // DARN's autoregressive decoder over the pixels (2026-12-03), with a hidden layer each way and k = 2.
        ["darn-autoregressive-decoder"] = new($"{Small} --model darn --darn-decoder autoregressive --k 2", "--k 7",
            "54d696a52c2c73e805404ffee62d3014f8ab26e8627258b8617a7bdfade23156",
            "26b5d8cc82889ddcca1cc2eea3b9be5c25ad7e7a5d27a0cf4de5a3db415efd56"),
        // DARN's Taylor-expansion baseline (2026-12-03), with the autoregressive decoder.
        ["darn-taylor"] = new($"{Small} --model darn --darn-estimator taylor --darn-decoder autoregressive", "--k 7",
            "104e580c55d96a4b6c23cc59c8a9b2f81fba581b832b07e61cfdbe37a5bd6de4",
            "df7f02c90224635309bdee26693e2e64b314cb6c39454b17877e386e52db9e2b"),
        // Stacked DARN (2026-12-03): two layers of autoregressive units, 3 over 2.
        ["darn-2layer"] = new("--hidden 8 --latent 3 --hidden2 none --latent2 2 --batch-size 6 --epochs 3 --model darn --stochastic-layers 2", "--k 7",
            "d083109a68f4aa72b2ab899b3f1f2fc1a7e5564c41302da80a702c63638436cd",
            "b4e4ccc6967b43fdc55df97c813750dfa848490cd5ac100969c52f122d8e4b43"),
        // The sparse gamma DEF (2026-12-03): two layers with the default k = 4, and one layer (the Poisson
        // factorization baseline's shape) with α = 0.3 and k = 2. The three DEF runs' hashes were re-recorded the next
        // day when the leave-one-out gradient began taking the first sample's score from each (the same sum, rounded
        // otherwise, so that samples that all drew alike give exactly 0).
        ["def"] = new($"{Small} --model def --def-layers gamma:4,gamma:3", "--k 7",
            "1612d66f56ea39bbdd4cda87659e571612a33de06b2d951de8f9a363865140d1",
            "119f1039ba4824e05c6ce0bba0914e9f3e3758dd3c4b574409e3afd7a94d1269"),
        ["def-one-layer-k2"] = new("--hidden 6 --batch-size 6 --epochs 3 --model def --def-layers gamma:5 --def-shape 0.3 --k 2", "--k 7",
            "e9fd3d0110c474aac3496ba7561f60fe3c306fd16b639f4844846bead494f45a",
            "bbba49a8660e4c3787d333e145dd245cea3e355658d51d1177ca15afd8f6bd54"),
        // Poisson counts of the grey levels (2026-12-03): Poisson factorization, one gamma layer.
        ["def-poisson"] = new("--hidden 6 --batch-size 6 --epochs 3 --model def --def-layers gamma:4 --likelihood poisson --k 2", "--k 7",
            "cba2032769ddd88b65ac703b14f5d798154ba56d97326143f8a018cbf603cb6c",
            "f7b0371b14e4a72b97b97876e4b2bc992f2ab4e2fa82a9a34ce0379371542228"),
        // The DEF's discrete layers (2026-12-03): a sigmoid-belief-net layer under a Poisson layer under a gamma top, and
        // Poisson layers alone on Poisson counts.
        ["def-mixed"] = new("--hidden 8 --batch-size 6 --epochs 3 --model def --def-layers sbn:4,poisson:3,gamma:2 --k 2", "--k 7",
            "63785f8434657284e3d791e1779af37813cd1621028a909376e7a706c64a3c11",
            "dfd4fd42f62fb95edab5593a243d0a8563a5bd11e15ce2813e6cd5d8966b4878"),
        ["def-poisson-layers"] = new("--hidden 6 --batch-size 6 --epochs 3 --model def --def-layers poisson:4,poisson:2 --likelihood poisson --k 2", "--k 7",
            "1356dc97658ba4e7597c255d6cc6dd32b37a58d6b48309d4903570ae2d476e59",
            "b2e62ffa55cabc6091c88a4cbdb5c099260e0bd2415f5fb5146e511951d9c08a"),
        // The Bernoulli HVM (2026-12-03): a hidden layer each way with its default two flow steps; linear layers with an
        // inverse-flow r and k = 2.
        ["hvm-bernoulli"] = new($"{Small} --model hvm-bernoulli", "--k 7",
            "2d2fc372f1734dd9f917833d924e1b93c3cce9f88ee7d4cdb4e42bea8eba2c84",
            "a8827dbcadf76dfbc198b69c862a310c2f52f1fcae45690c3c152ed8be63c99b"),
        ["hvm-bernoulli-linear-inverse-flow"] = new("--hidden none --latent 4 --batch-size 6 --epochs 3 --model hvm-bernoulli --flow-length 1 --auxiliary-flow-length 2 --k 2", "--k 7",
            "0614b89c6e889e9d93ee16ff6eea26afdf28bc78117c3d71d4bb7bbe6296b763",
            "9d1f26d66c860b63dfdcf3e1a3e502107acb2a9ac51694dfae3a8c2dc94bb7d8"),
        // The Table 1 presets at their own sizes (20-200-200-50 and 20-200-200-100-100-100-50), batch 20, the
        // short schedule: eight epochs of two steps.
        ["vae-1layer-k1"] = new("--preset vae-1layer-k1 --lr-schedule iwae-short", "--k 7",
            "90c4fe75d6c58159d1fc25c76c93b173cfb237469f81a4fd45b74a39e3a6a441",
            "3ff1f4ba256ccffe93e8535fe70e37abb3f49ada34d81c0ac906b883d813eec8"),
        ["vae-1layer-k5"] = new("--preset vae-1layer-k5 --lr-schedule iwae-short", "--k 7",
            "56e8acd217230342d4d1f41a6e7ff451860163d0621cda93b2285fa1f6cfa66e",
            "1ae33b3db78241e64480b1f87f7a61b0e5e23fbf97c28daf2fc061ba437f4f28"),
        ["vae-1layer-k50"] = new("--preset vae-1layer-k50 --lr-schedule iwae-short", "--k 7",
            "9f61403704e5af46aab574ed1715b2bc0b29425182940222c5d72ea3bc26acdf",
            "fb59ea7884c30fe83632d486ec3a020fcaf405bfb334037a7a19e732632d984d"),
        ["iwae-1layer-k5"] = new("--preset iwae-1layer-k5 --lr-schedule iwae-short", "--k 7",
            "4ec050edabaffe4194cddad73204703112805e11ab3f797aa72c0915dbb9bf09",
            "2f3c247f9db5c4e668a9fdb036acb513361d3be22f6db31e48c27b5a9a896630"),
        ["iwae-1layer-k50"] = new("--preset iwae-1layer-k50 --lr-schedule iwae-short", "--k 7",
            "cbee6d84c2bd46cdee55400266e64074b1e28c057d2e837d89f5bf42428d5ea1",
            "c75f0565ca7c71148a17b5a6e295caaeca94ad6428184f226b5d8632934d52fd"),
        ["vae-2layer-k1"] = new("--preset vae-2layer-k1 --lr-schedule iwae-short", "--k 7",
            "bb030f4955946c344bd8868b5a96e783fe776ee57f342b85d85e4cfed4ea647c",
            "f34601a59603533770676b7a004cd1c99bee06e9af9037870292e0e3c9cfb0b9"),
        ["vae-2layer-k5"] = new("--preset vae-2layer-k5 --lr-schedule iwae-short", "--k 7",
            "de811d990ce6dc8340879d33e1ae4bcd57eb632682f934216dc2e7445b0dca3d",
            "525412d1777b516d868ed95005b0f0d6a3a520095d6a5a41708849ac7994b76d"),
        ["vae-2layer-k50"] = new("--preset vae-2layer-k50 --lr-schedule iwae-short", "--k 7",
            "67c9d97ee5536b31c1a6c65fb6b827e1766e0f11e43c3e2a84464781ef299399",
            "df0b089eb95bd40177772cacae5ec27420f0f320157f6f2d6fbfe0b6140256d1"),
        ["iwae-2layer-k5"] = new("--preset iwae-2layer-k5 --lr-schedule iwae-short", "--k 7",
            "27ae1770e51970ac3c77d57ba7890b99b83dd27911addb89c5874a619e645d95",
            "40bac7b659710115928fa84a568151e2c4881074f7e1df7b746d1a6d5a219996"),
        ["iwae-2layer-k50"] = new("--preset iwae-2layer-k50 --lr-schedule iwae-short", "--k 7",
            "a7c4392de5960e1abc4928eaaaab2b957f240377068d2c0d8b4355a4413ac1d6",
            "d9726939545e53e21b3884b95fd1827d0b7950e8627d1dab45e838974461e919"),
    };

    public static TheoryData<string> RunNames => new(Runs.Keys);

    /// <summary>Run folders written by the build the hashes were recorded with, committed under tests/Golden/runs.</summary>
    public static TheoryData<string> SavedRunNames => new(Directory.GetDirectories(SavedRunsDirectory).Select(Path.GetFileName).OfType<string>().Order());

    private static string SavedRunsDirectory => Path.Combine(AppContext.BaseDirectory, "Golden", "runs");

    [Theory]
    [MemberData(nameof(RunNames))]
    public void ShortRunKeepsItsGoldenHashes(string name)
    {
        var golden = Runs[name];
        var data = WriteDataSet(Path.Combine(directory, "data"));
        var run = Path.Combine(directory, name);
        string output = Run($"train --data {data} --accelerator cpu --out {run} {golden.Train}");
        // Every epoch is in metrics.csv with a finite test loss; a preset says so and runs the eight epochs of the
        // short schedule with its own architecture, k and optimiser.
        var rows = MetricsFile.Read(Path.Combine(run, "metrics.csv"));
        Assert.All(rows, row => Assert.True(double.IsFinite(row.TestLoss), $"{name} epoch {row.Epoch}: {row.TestLoss}"));
        if (Presets.Names.Contains(name))
        {
            Assert.Contains($"preset {name}", output);
            Assert.Equal(Enumerable.Range(1, 8), rows.Select(row => row.Epoch));
        }
        Run($"eval {run} --accelerator cpu {golden.Eval}");
        var actual = (Sha256(Path.Combine(run, "checkpoint", "model.safetensors")), Sha256(Path.Combine(run, "eval.json")));
        Assert.True((golden.ModelSha256, golden.EvalSha256) == actual,
            $"{name}: model.safetensors {actual.Item1} (golden {golden.ModelSha256}), eval.json {actual.Item2} (golden {golden.EvalSha256})");
    }

    /// <summary>The double DEF's short runs (it trains on a count matrix, not through train): options, then the hashes of
    /// model.safetensors and eval.json.</summary>
    public static readonly IReadOnlyDictionary<string, (string Options, string ModelSha256, string EvalSha256)> DoubleDefRuns =
        new Dictionary<string, (string, string, string)>
        {
            ["double-def"] = ("--def-layers gamma:3,gamma:2 --column-layers gamma:3,gamma:2 --k 3 --steps 8 --eval-every 4 --eval-draws 3",
                "d03e1ef3348b99d45ed9fbb78f0c1cdcea300191aefd6975110bebfac0f895d8",
                "f2b9356dd717b873eaf8fb3318907fa995c9a999dcfdfdc678c03deeab971129"),
            ["double-def-one-layer-k2"] = ("--def-layers gamma:3 --k 2 --def-shape 0.3 --lr 0.05 --held-out 0.25 --steps 8 --eval-every 8 --eval-draws 2",
                "725acda4f4777f5ad21504d66e55bcde53d4b9f08b114e367b91dc08e9656dd4",
                "249213c33c6849614543d07fb592e8d36725ae183b547838f32ca281a8fa6a82"),
        };

    public static TheoryData<string> DoubleDefRunNames => new(DoubleDefRuns.Keys);

    [Theory]
    [MemberData(nameof(DoubleDefRunNames))]
    public void DoubleDefShortRunKeepsItsGoldenHashes(string name)
    {
        var golden = DoubleDefRuns[name];
        // 11 × 7 counts from 0 to 9, the same on every call.
        var random = new Random(20261203);
        string data = Path.Combine(directory, "counts.csv");
        File.WriteAllLines(data, Enumerable.Range(0, 11).Select(_ => string.Join(",", Enumerable.Range(0, 7).Select(_ => random.Next(10)))));
        var run = Path.Combine(directory, name);
        Run($"double-def --data {data} --accelerator cpu --out {run} {golden.Options}");
        var actual = (Sha256(Path.Combine(run, "model.safetensors")), Sha256(Path.Combine(run, "eval.json")));
        Assert.True((golden.ModelSha256, golden.EvalSha256) == actual,
            $"{name}: model.safetensors {actual.Item1} (golden {golden.ModelSha256}), eval.json {actual.Item2} (golden {golden.EvalSha256})");
    }

    /// <summary>The deep GP's short runs (issue 25): the toy step with two layers, a 30-row table with three
    /// non-whitened layers on minibatches of 10 (so the epoch permutation counts), and two layers classifying images on
    /// minibatches of 16 (softmax, an inner layer narrowed by the principal directions; and the same under the robust-max
    /// likelihood).</summary>
    public static readonly IReadOnlyDictionary<string, (string Options, string ModelSha256, string EvalSha256)> DeepGpRuns =
        new Dictionary<string, (string, string, string)>
        {
            ["dgp-toy"] = ("--data toy --dgp-layers 2 --inducing 8 --steps 6 --eval-every 3 --samples 4",
                "1481e8f188a315f8d445e087881429b1f7d0c40ce8fbab08348c7ec019db7431",
                "284d55eca12477c652ef8488527df384bb1c84b83fccd379ca4ce37bd0df7f09"),
            ["dgp-images"] = ("--dgp-layers 2 --inducing 6 --inner-width 4 --batch-size 16 --steps 4 --eval-every 4 --samples 3",
                "3a64e9874c434e64ded44b429864a39d1bf6687b47e7b899396648e4f2d3187e",
                "ed29f43b1726347acb2dfe600a755e058ddcac9d51df1fadedbe269ebb20801e"),
            ["dgp-images-robust-max"] = ("--likelihood robust-max --dgp-layers 2 --inducing 6 --inner-width 4 --batch-size 16 --steps 4 --eval-every 4 --samples 3",
                "fbccdc870c50a46f43f5424a30d92ad36a1ee5cc79dcecb5f6c798f3558bc3b9",
                "766e31763d62c0d5c4927da39d03614c6a635250872aa094d717dd8133c527d4"),
            ["dgp-table-three-layers"] = ("--dgp-layers 3 --inducing 5 --inner-width 3 --whitened false --batch-size 10 --lr 0.02 --steps 6 --eval-every 6 --samples 3",
                "ee4593b0baf212186488fafebd1f46cddca8c2f1bd9dd46d800c5dfa8d8856c5",
                "8a138a8aa8fb1189cbc836319b1310506a89b43d733c11420cf945abccef9e26"),
        };

    public static TheoryData<string> DeepGpRunNames => new(DeepGpRuns.Keys);

    [Theory]
    [MemberData(nameof(DeepGpRunNames))]
    public void DeepGpShortRunKeepsItsGoldenHashes(string name)
    {
        var golden = DeepGpRuns[name];
        // 30 rows of two features and a smooth target, the same on every call.
        var random = new Random(20261203);
        string data = Path.Combine(directory, "table.csv");
        File.WriteAllLines(data, Enumerable.Range(0, 30).Select(_ => string.Join(",", Enumerable.Range(0, 3).Select(_ => (random.Next(2000) / 1000.0 - 1).ToString(System.Globalization.CultureInfo.InvariantCulture)))).Prepend("a,b,y"));
        var run = Path.Combine(directory, name);
        // The image run classifies the golden runs' 42 training and 9 test images of 4×5 pixels.
        if (name.StartsWith("dgp-images", StringComparison.Ordinal))
            data = WriteDataSet(Path.Combine(directory, "images"));
        Run($"dgp {(golden.Options.Contains("--data") ? "" : $"--data {data} ")}--accelerator cpu --out {run} {golden.Options}");
        var actual = (Sha256(Path.Combine(run, "model.safetensors")), Sha256(Path.Combine(run, "eval.json")));
        Assert.True((golden.ModelSha256, golden.EvalSha256) == actual,
            $"{name}: model.safetensors {actual.Item1} (golden {golden.ModelSha256}), eval.json {actual.Item2} (golden {golden.EvalSha256})");
    }

    /// <summary>A run folder saved before the rebuild opens, evaluates to the golden eval.json, and resumes.</summary>
    [Theory]
    [MemberData(nameof(SavedRunNames))]
    public void RunSavedBeforeTheRebuildStillLoads(string name)
    {
        var data = WriteDataSet(Path.Combine(directory, "data"));
        var run = Path.Combine(directory, name);
        CopyDirectory(Path.Combine(SavedRunsDirectory, name), run);
        // The saved config names the data folder of the machine that wrote it: point it at this one's copy.
        var configPath = Path.Combine(run, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!;
        config["training"]!["Data"] = data;
        File.WriteAllText(configPath, config.ToJsonString());
        Run($"eval {run} --accelerator cpu {Runs[name].Eval}");
        Assert.Equal(Runs[name].EvalSha256, Sha256(Path.Combine(run, "eval.json")));
        Run($"train --resume {run} --epochs 4 --accelerator cpu");
    }

    private static string Run(string commandLine)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exitCode = Program.Run(commandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries), output, error,
            TestContext.Current.CancellationToken);
        Assert.True(exitCode == 0, $"{commandLine}: exit {exitCode}: {error}");
        return output.ToString();
    }

    /// <summary>42 training and 9 test images of 4×5 random bytes with labels 0–9, the same on every call.</summary>
    private static string WriteDataSet(string folder)
    {
        if (Directory.Exists(folder))
            return folder;
        Directory.CreateDirectory(folder);
        var random = new Random(20261202);
        void Write(string prefix, int count)
        {
            var pixels = new byte[count * 20];
            random.NextBytes(pixels);
            var labels = Enumerable.Range(0, count).Select(_ => (byte)random.Next(10)).ToArray();
            File.WriteAllBytes(Path.Combine(folder, $"{prefix}-images-idx3-ubyte"), IdxReaderTests.Idx([count, 4, 5], pixels));
            File.WriteAllBytes(Path.Combine(folder, $"{prefix}-labels-idx1-ubyte"), IdxReaderTests.Idx([count], labels));
        }
        Write("train", 42);
        Write("t10k", 9);
        return folder;
    }

    private static string Sha256(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    private static void CopyDirectory(string from, string to)
    {
        foreach (var folder in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, folder)));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
    }
}
