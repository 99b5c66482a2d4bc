"""Rights requests (个人信息权利请求): identity verification, execution against the app's stores."""
