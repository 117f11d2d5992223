-- The provider account of an instance is provider-neutral: `{"id", "name", "extra"}`. Accounts written before
-- were spelled after the first provider's business (`business_id`, `business_name`).
UPDATE instances
SET account = REPLACE(REPLACE(account, '"business_id":', '"id":'), '"business_name":', '"name":')
WHERE account LIKE '%"business_id":%' OR account LIKE '%"business_name":%';
