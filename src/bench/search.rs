pub async fn search(_a: SearchArgs) -> anyhow::Result<()> {
    Ok(())
}
#[derive(Debug, Clone)]
pub struct SearchArgs;
