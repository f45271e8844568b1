# The provider lock provision seeds every new work folder's Terraform module with: the
# DigitalOcean provider release whose schema the module is validated against, and the
# checksums of its official packages (h1: the unpacked linux_amd64 package, zh: the SHA-256
# of each platform's release archive). Terraform refuses a provider package that matches
# none of them. Set PROVISION_TERRAFORM_LOCK_FILE to use another lock (a provider build of
# your own); an existing .terraform.lock.hcl in a work folder is never replaced.
# Provenance: the checksums `terraform init` recorded for this release in a public lock
# file (JetBrains' Terraform plugin test data); this machine cannot reach the registry to
# check them, a real `provision up` does on its first init.

provider "registry.terraform.io/digitalocean/digitalocean" {
  version     = "2.34.1"
  constraints = "~> 2.34"
  hashes = [
    "h1:5tfXRq80lhTUCYxAqcUGL8BjR3SSTk+ggiW20UvK+JA=",
    "zh:022d4c97af3d022d4e3735a81c6a7297aa43c3b28a8cecaa0ff58273a5677e2e",
    "zh:1922f86d5710707eb497fbebcb1a1c5584c843a7e95c3900d750d81bd2785204",
    "zh:1b7ab7c67a26c399eb5aa8a7a695cb59279c6a1a562ead3064e4a6b17cdacabe",
    "zh:1dc666faa2ec0efc32329b4c8ff79813b54741ef1741bc42d90513e5ba904048",
    "zh:220dec61ffd9448a91cca92f2bc6642df10db57b25d3d27036c3a370e9870cb7",
    "zh:262301545057e654bd6193dc04b01666531fccfcf722f730827695098d93afa7",
    "zh:63677684a14e6b7790833982d203fb2f84b105ad6b9b490b3a4ecc7043cdba81",
    "zh:67a2932227623073aa9431a12916b52ce1ccddb96f9a2d6cdae2aaf7558ccbf8",
    "zh:70dfc6ac33ee140dcb29a971df7eeb15117741b5a75b9f8486c5468c9dd28f24",
    "zh:7e3b3b62754e86442048b4b1284e10807e3e58f417e1d59a4575dd29ac6ba518",
    "zh:7e6fe662b1e283ad498eb2549d0c2260b908ab5b848e05f84fa4acdca5b4d5ca",
    "zh:9c554170f20e659222896533a3a91954fb1d210eea60de05aea803b36d5ccd5d",
    "zh:ad2f64d758bd718eb39171f1c31219900fd2bfb552a14f6a90b18cfd178a74b4",
    "zh:cfce070000e95dfe56a901340ac256f9d2f84a73bf62391cba8a8e9bf1f857e0",
    "zh:d5ae30eccd53ca7314157e62d8ec53151697ed124e43b24b2d16c565054730c6",
    "zh:fbe5edf5337adb7360f9ffef57d02b397555b6a89bba68d1b60edfec6e23f02c",
  ]
}
